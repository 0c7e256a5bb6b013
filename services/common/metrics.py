"""Prometheus metrics of one service process, served by its `metrics()` RPC.

Counters live in a process-wide registry: entrypoint calls (RPC and event handlers) with
their outcome and latency, and repeats the inbox turned away. Gauges that describe the
database (outbox backlog, inbox size) are read when asked. The gateway gathers every
service's text at `/metrics` and adds the broker's queue depths and dead letters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from services.common.db import Database
from services.common.models import InboxRecord
from services.common.outbox import unpublished_count

REGISTRY = CollectorRegistry(auto_describe=True)

CALLS = Counter("xueji_entrypoint_calls", "Entrypoint calls by outcome (ok, error)",
                ["service", "kind", "method", "outcome"], registry=REGISTRY)
LATENCY = Histogram("xueji_entrypoint_seconds", "Time spent in an entrypoint's worker",
                    ["service", "kind", "method"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
EVENTS = Counter("xueji_events_handled", "Events handed to event handlers (a batch counts each)",
                 ["service", "method"], registry=REGISTRY)
DUPLICATES = Counter("xueji_inbox_duplicates", "Events turned away by the inbox as already applied",
                     ["consumer"], registry=REGISTRY)
OUTBOX_BACKLOG = Gauge("xueji_outbox_backlog", "Outbox rows not yet published", ["service"],
                       registry=REGISTRY)
INBOX_ROWS = Gauge("xueji_inbox_rows", "Events recorded in the inbox", ["service"], registry=REGISTRY)
UP = Gauge("xueji_service_up", "1 when the service and its database answer", ["service"], registry=REGISTRY)


def observe(service: str, kind: str, method: str, seconds: float, failed: bool, events: int = 0) -> None:
    CALLS.labels(service, kind, method, "error" if failed else "ok").inc()
    LATENCY.labels(service, kind, method).observe(seconds)
    if events:
        EVENTS.labels(service, method).inc(events)


def duplicate(consumer: str, count: int = 1) -> None:
    DUPLICATES.labels(consumer).inc(count)


def exposition(db: Database, service: str) -> str:
    """The process's metrics in Prometheus text format, database gauges read now."""
    with db.reading() as s:
        OUTBOX_BACKLOG.labels(service).set(unpublished_count(s))
        INBOX_ROWS.labels(service).set(s.scalar(select(func.count()).select_from(InboxRecord)) or 0)
    UP.labels(service).set(1)
    return generate_latest(REGISTRY).decode()
