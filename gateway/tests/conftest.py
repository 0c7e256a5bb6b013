"""Fixtures of the gateway tests: stand-in services in real containers, and apps on them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.app import create_app, rpc_pool
from gateway.tests import cluster

SERVICES = {
    "identity": cluster.IdentityStandIn,
    "roster": cluster.RosterStandIn,
    "housing": cluster.HousingStandIn,
    "aid": cluster.AidStandIn,
}


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    cluster.reset()
    yield
    cluster.reset()


@pytest.fixture
def start_services(container_factory: Any) -> Callable[..., dict[str, Any]]:
    """`start_services(uri, "identity", "roster")` → running containers by name."""

    def start(uri: str, *names: str) -> dict[str, Any]:
        containers = {}
        for name in names:
            container = container_factory(SERVICES[name], {"AMQP_URI": uri})
            container.start()
            containers[name] = container
        return containers

    return start


@pytest.fixture
def make_app() -> Iterator[Callable[..., Flask]]:
    """`make_app(uri, **settings)` → a gateway app; its RPC pool is closed afterwards."""
    apps: list[Flask] = []

    def make(uri: str, **overrides: Any) -> Flask:
        config = {
            "TESTING": True,
            "SECRET_KEY": "gateway-tests",
            "XUEJI_AMQP_URI": uri,
            "XUEJI_RPC_TIMEOUT": 3.0,
            "XUEJI_HEALTH_SERVICES": ("identity", "roster", "housing"),
            "XUEJI_CONFIGURE_LOGGING": False,
            **overrides,
        }
        app = create_app(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        rpc_pool(app).close()


@pytest.fixture
def cluster_up(amqp_uri: str, start_services: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """identity, roster and housing running on the session's vhost."""
    return start_services(amqp_uri, "identity", "roster", "housing")


@pytest.fixture
def app(amqp_uri: str, cluster_up: dict[str, Any], make_app: Callable[..., Flask]) -> Flask:
    return make_app(amqp_uri)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
