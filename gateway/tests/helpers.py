"""Logging in from a Flask test client, through the API or the login form."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from gateway.tests import cluster


def api_login(client: FlaskClient, username: str, password: str = cluster.PASSWORD) -> Any:
    return client.post("/api/v1/session", json={"username": username, "password": password})


def web_login(client: FlaskClient, username: str, password: str = cluster.PASSWORD,
              next_url: str = "") -> Any:
    client.get("/login")
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    return client.post("/login", data={"username": username, "password": password,
                                       "next": next_url, "csrf_token": token.value})
