"""Fixtures for cross-service tests: a running cluster of real service processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.catalog import SERVICES
from tests.harness import Cluster


@pytest.fixture
def make_cluster(
    tmp_path: Path, pg_database: Callable[[str], str], fresh_amqp_uri: str
) -> Iterator[Callable[..., Cluster]]:
    """Factory: `make_cluster(amqp_uri, backend="sqlite", env={...})` → prepared Cluster.

    Depends on `fresh_amqp_uri` so that clusters stop before their vhost is deleted
    (services whose vhost vanished keep reconnecting and stop slowly).
    """
    clusters: list[Cluster] = []

    def make(amqp_uri: str, backend: str = "sqlite", env: dict[str, str] | None = None) -> Cluster:
        if backend == "postgresql":
            urls = {name: pg_database(name) for name in SERVICES}
        else:
            urls = {name: f"sqlite:///{tmp_path}/{name}.sqlite3" for name in SERVICES}
        cluster = Cluster(amqp_uri, urls, tmp_path, env).prepare()
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.close()
