"""nameko dependency providers; the only place the shared mechanics meet nameko."""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from typing import Any

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

import services.common.nameko_compat  # noqa: F401  (applies the ack fix)
from services.common import metrics
from services.common.caller import CONTEXT_KEY, Caller
from services.common.db import Database, database_for
from services.common.entrypoints import BatchEventHandler, RawConsumer, ReliableEventHandler
from services.common.logs import bind_correlation_id, clear_correlation_id
from services.common.relay import OutboxRelay, RelayLoop


def service_database(config: dict[str, Any], service: str) -> Database:
    """The process-wide Database of `service`: URL from nameko config, else env, else SQLite."""
    url = config.get(f"{service.upper()}_DATABASE_URL")
    return database_for(service, url or None)


class DatabaseProvider(DependencyProvider):
    """Gives a worker the service's `Database` (engine shared by the process)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.db: Database | None = None

    def setup(self) -> None:
        self.db = service_database(self.container.config, self.service)

    def get_dependency(self, worker_ctx: Any) -> Database:
        assert self.db is not None
        return self.db


class CallerProvider(DependencyProvider):
    """The caller context sent by the gateway (or another service) in context data.

    Binds the correlation id to this worker's log records too.
    """

    def get_dependency(self, worker_ctx: Any) -> Caller | None:
        raw = worker_ctx.context_data.get(CONTEXT_KEY)
        if not raw:
            return None
        data = json.loads(raw) if isinstance(raw, str | bytes) else raw
        return Caller.from_dict(data)

    def worker_setup(self, worker_ctx: Any) -> None:
        raw = worker_ctx.context_data.get(CONTEXT_KEY)
        correlation_id = None
        if raw:
            try:
                data = json.loads(raw) if isinstance(raw, str | bytes) else raw
                correlation_id = data.get("correlation_id")
            except (ValueError, AttributeError):
                logging.getLogger(__name__).warning("unreadable caller context")
        bind_correlation_id(correlation_id or worker_ctx.call_id)

    def worker_teardown(self, worker_ctx: Any) -> None:
        clear_correlation_id()


class OutboxRelayProvider(DependencyProvider):
    """Runs the service's outbox relay beside its workers (set XUEJI_EMBEDDED_RELAY=0
    to leave relaying to a separate `python -m services.common.relay` process)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.loop: RelayLoop | None = None

    def start(self) -> None:
        if os.environ.get("XUEJI_EMBEDDED_RELAY", "1") == "0":
            return
        db = service_database(self.container.config, self.service)
        relay = OutboxRelay(db, self.container.config["AMQP_URI"])
        self.loop = RelayLoop(relay, poll_interval=float(os.environ.get("XUEJI_RELAY_POLL", "0.5")))
        self.container.spawn_managed_thread(self.loop.run, identifier="outbox-relay")

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.stop()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx: Any) -> RelayLoop | None:
        return self.loop


def tune_garbage_collector() -> None:
    """Once the service has started: what was loaded so far (modules, mappers, compiled queries)
    stays, so move it out of the collector's sight (`gc.freeze`), and collect the young generation
    less often: a batch of events allocates ORM objects by the thousand. In the graduation benchmark
    this took 10–20 % off roster's and housing's CPU time."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


GC_THRESHOLD = 20_000  # allocations between young-generation collections (CPython's default: 700)


class MetricsProvider(DependencyProvider):
    """Counts every worker of the service: kind, method, outcome, time (services.common.metrics)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._started: dict[Any, float] = {}

    def start(self) -> None:
        tune_garbage_collector()

    def worker_setup(self, worker_ctx: Any) -> None:
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        started = self._started.pop(worker_ctx, None)
        if started is None:
            return
        entrypoint = worker_ctx.entrypoint
        is_event = isinstance(entrypoint, ReliableEventHandler | RawConsumer)
        events = 0
        if is_event and worker_ctx.args:
            body = worker_ctx.args[0]
            events = len(body) if isinstance(entrypoint, BatchEventHandler) and isinstance(body, list) else 1
        metrics.observe(self.service, "event" if is_event else "rpc", entrypoint.method_name,
                        time.perf_counter() - started, exc_info is not None, events)

    def worker_teardown(self, worker_ctx: Any) -> None:
        self._started.pop(worker_ctx, None)


class Observable:
    """Base of every service class: `metrics()` answers in Prometheus text (no caller needed:
    it holds counts only, no personal data; the gateway guards `/metrics`)."""

    name: str
    db: Any

    @rpc
    def metrics(self) -> str:
        return metrics.exposition(self.db, self.name)
