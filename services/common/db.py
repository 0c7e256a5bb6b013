"""One database per service: engine factory, unit of work and the nameko dependency.

SQLite (a file per service) is the default; PostgreSQL is chosen by URL in the env var
`<SERVICE>_DATABASE_URL`. Under eventlet, psycopg2 is made cooperative with psycogreen
so PostgreSQL I/O yields to the hub. SQLite calls cannot yield, so write transactions on one
SQLite engine are serialised by a (green) lock and open with BEGIN IMMEDIATE, which
avoids lock-upgrade deadlocks between processes sharing the file; reads use a plain
BEGIN and, in WAL mode, never wait for a writer.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def data_dir() -> Path:
    path = Path(os.environ.get("XUEJI_DATA_DIR", "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(service: str) -> str:
    url = os.environ.get(f"{service.upper()}_DATABASE_URL")
    return url or f"sqlite:///{data_dir() / f'{service}.sqlite3'}"


_green_patched = False


def _make_psycopg2_cooperative() -> None:
    global _green_patched
    if _green_patched:
        return
    try:
        import eventlet.patcher
    except ImportError:  # pragma: no cover - eventlet is a dependency
        return
    if eventlet.patcher.is_monkey_patched("socket"):
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
        _green_patched = True


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # How long a writer waits for another process's lock before failing (and retrying).
        timeout = float(os.environ.get("XUEJI_SQLITE_TIMEOUT", "30"))
        engine = create_engine(url, connect_args={"timeout": timeout, "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            # Writers take the write lock up front; readers (WAL) never wait for it.
            immediate = conn.get_execution_options().get("sqlite_immediate", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if url.startswith("postgresql"):
        _make_psycopg2_cooperative()
        # values_plus_batch: the ORM's many-row UPDATEs (batch status changes) go in pages, not one by one.
        # rowcount of an executemany is then unreliable; single statements are unaffected.
        return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True,
                             executemany_mode="values_plus_batch")
    return create_engine(url, pool_pre_ping=True)


class Database:
    """A service's database: sessions and a unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # RLock: a green lock once eventlet has patched threading.
        self._lock = threading.RLock() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any exception."""
        if self._lock is not None:
            self._lock.acquire()
        try:
            with self.sessions.begin() as session:
                if self._lock is not None:
                    session.connection(execution_options={"sqlite_immediate": True})
                yield session
        finally:
            if self._lock is not None:
                self._lock.release()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session (no lock needed beyond what the engine does)."""
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def database_for(service: str, url: str | None = None) -> Database:
    """The process-wide Database of a service (one engine and pool per process)."""
    url = url or database_url(service)
    with _databases_lock:
        db = _databases.get(url)
        if db is None:
            db = _databases[url] = Database(url)
        return db
