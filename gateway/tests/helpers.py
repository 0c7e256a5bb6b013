"""Logging in from a Flask test client, through the API or the login form; migrated database templates."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from gateway.tests import cluster
from services.common.migrate import upgrade


def api_login(client: FlaskClient, username: str, password: str = cluster.PASSWORD) -> Any:
    return client.post("/api/v1/session", json={"username": username, "password": password})


def web_login(client: FlaskClient, username: str, password: str = cluster.PASSWORD,
              next_url: str = "") -> Any:
    client.get("/login")
    token = client.get_cookie("xueji_csrf")
    assert token is not None
    return client.post("/login", data={"username": username, "password": password,
                                       "next": next_url, "csrf_token": token.value})


def migrated_templates(folder: Path, *services: str) -> dict[str, Path]:
    """Each service's SQLite database migrated once into `folder` (a module's template)."""
    files = {}
    for service in services:
        files[service] = folder / f"{service}.sqlite3"
        upgrade(service, f"sqlite:///{files[service]}")
    return files


def fresh_copies(templates: dict[str, Path], into: Path) -> dict[str, str]:
    """One test's own copies of the migrated templates: service → SQLite URL."""
    urls = {}
    for service, template in templates.items():
        shutil.copy(template, into / template.name)
        urls[service] = f"sqlite:///{into / template.name}"
    return urls
