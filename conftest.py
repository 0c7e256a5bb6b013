"""Fixtures shared by every test: a private RabbitMQ vhost and private PostgreSQL databases.

Nothing is mocked: tests talk to the machine's RabbitMQ and PostgreSQL (the Makefile
starts them). Each test session works in its own vhost, and each database fixture
creates and drops its own database, so runs never see each other's messages or rows.
"""

from __future__ import annotations

# Services run under eventlet (nameko); tests run the same way. Must come first.
import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402

import pytest  # noqa: E402

AMQP_BASE = os.environ.get("XUEJI_TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
PG_ADMIN_URL = os.environ.get(
    "XUEJI_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _rabbitmqctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, "-q", *args], check=True, capture_output=True, timeout=60)


def make_vhost() -> tuple[str, Callable[[], None]]:
    vhost = f"xueji-test-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    return f"{AMQP_BASE}/{vhost}", lambda: _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def amqp_uri() -> Iterator[str]:
    """A RabbitMQ vhost for this test session."""
    uri, drop = make_vhost()
    yield uri
    drop()


@pytest.fixture
def fresh_amqp_uri() -> Iterator[str]:
    """A RabbitMQ vhost for one test (no queues or messages left by others)."""
    uri, drop = make_vhost()
    yield uri
    drop()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[Callable[[str], str]]:
    """Factory: `pg_database("roster")` creates an empty PostgreSQL database, returns its URL."""
    import psycopg2

    created: list[str] = []

    def admin_exec(sql: str) -> None:
        conn = psycopg2.connect(PG_ADMIN_URL)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def make(prefix: str) -> str:
        name = f"xueji_test_{prefix}_{uuid.uuid4().hex[:10]}"
        admin_exec(f'CREATE DATABASE "{name}"')
        created.append(name)
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    yield make
    for name in created:
        admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    """Parametrise a test over both database back ends."""
    return request.param


@pytest.fixture
def database_url_for(
    db_backend: str, tmp_path: object, pg_database: Callable[[str], str]
) -> Callable[[str], str]:
    """Factory: a fresh, empty database URL for a service on the test's back end."""

    def make(service: str) -> str:
        if db_backend == "postgresql":
            return pg_database(service)
        return f"sqlite:///{tmp_path}/{service}-{uuid.uuid4().hex[:6]}.sqlite3"

    return make


@pytest.fixture
def migrated_db(database_url_for: Callable[[str], str]) -> Callable[[str], object]:
    """Factory: `migrated_db("housing")` → a `Database` migrated to head by alembic."""
    from services.common.db import Database
    from services.common.migrate import upgrade

    made: list[Database] = []

    def make(service: str) -> Database:
        url = database_url_for(service)
        upgrade(service, url)
        db = Database(url)
        made.append(db)
        return db

    yield make  # type: ignore[misc]
    for db in made:
        db.dispose()
