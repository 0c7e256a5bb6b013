"""Operations: `/metrics` for Prometheus and the queue page (depths, dead letters, replay).

`/metrics` merges every service's own metrics (its `metrics()` RPC) with the gateway's
request counts and the broker's queue depths. Prometheus scrapes it without a login: give
it `XUEJI_METRICS_TOKEN` (sent as `Authorization: Bearer …`); without a token only
loopback may scrape. The queue page is for the IT centre and the student affairs office.
"""

from __future__ import annotations

import hmac
import logging
import time
from functools import cache
from typing import Any

from flask import Blueprint, Response, current_app, g, redirect, request, url_for
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from gateway import auth
from gateway.rpc import service_label
from gateway.web import _page, _render
from services.common.deadletters import list_dead_letters, replay
from services.common.errors import Forbidden, Invalid
from services.common.topology import QueueDepth, bindings_of, depths

log = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("xueji_http_requests", "Gateway requests by endpoint and status",
                   ["endpoint", "method", "status"], registry=REGISTRY)
REQUEST_SECONDS = Histogram("xueji_http_request_seconds", "Gateway request time", ["endpoint"],
                            registry=REGISTRY,
                            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


@cache
def handler_queues() -> tuple[str, ...]:
    """Every event handler's queue, from the service classes (as the topology step declares them)."""
    from services.catalog import all_service_classes

    return tuple(b.queue for b in bindings_of(all_service_classes()))


def queue_depths() -> list[QueueDepth]:
    return depths(current_app.config["XUEJI_AMQP_URI"], handler_queues())


# --- request metrics ------------------------------------------------------------------------
@bp.before_app_request
def _started() -> None:
    g.ops_started = time.perf_counter()


@bp.after_app_request
def _finished(response: Response) -> Response:
    started = g.pop("ops_started", None)
    if started is not None:
        endpoint = request.endpoint or "unknown"  # route names, never raw paths (bounded labels)
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
    return response


# --- /metrics -------------------------------------------------------------------------------
class _Gathered(Collector):
    """The services' metric families, merged by name, plus broker gauges; built per scrape."""

    def __init__(self, texts: dict[str, str | None], queues: list[QueueDepth] | None) -> None:
        self.texts = texts
        self.queues = queues

    def collect(self) -> Any:
        merged: dict[str, Metric] = {}
        for text in self.texts.values():
            for family in text_string_to_metric_families(text or ""):
                if family.name == "xueji_service_up":
                    continue  # reported below for every service, answering or not
                known = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                known.samples.extend(family.samples)
        yield from merged.values()
        up = Gauge("xueji_service_up", "1 when the service and its database answer", ["service"], registry=None)
        for name, text in self.texts.items():
            up.labels(name).set(0 if text is None else 1)
        yield from up.collect()
        if self.queues is not None:
            ready = Gauge("xueji_queue_messages", "Messages waiting in a handler's queue", ["queue"], registry=None)
            dead = Gauge("xueji_dead_letters", "Messages in a handler's dead-letter queue", ["queue"], registry=None)
            for q in self.queues:
                ready.labels(q.queue).set(q.messages or 0)
                dead.labels(q.queue).set(q.dead or 0)
            yield from ready.collect()
            yield from dead.collect()


def _scrape_allowed() -> bool:
    token = current_app.config.get("XUEJI_METRICS_TOKEN") or ""
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    return request.remote_addr in ("127.0.0.1", "::1")


@bp.get("/metrics")
def metrics() -> Response:
    if not _scrape_allowed():
        return Response("forbidden\n", status=403, mimetype="text/plain")
    names = current_app.config["XUEJI_HEALTH_SERVICES"]
    outcomes = auth.rpc().call_many({name: (name, "metrics") for name in names},
                                    timeout=current_app.config["XUEJI_HEALTH_TIMEOUT"])
    texts = {name: (outcomes[name].value if outcomes[name].ok else None) for name in names}
    try:
        queues: list[QueueDepth] | None = queue_depths()
    except Exception:  # noqa: BLE001 - the broker is down: the services' figures still count
        log.warning("broker unreachable while scraping queue depths")
        queues = None
    registry = CollectorRegistry()
    registry.register(_Gathered(texts, queues))
    body = generate_latest(REGISTRY) + generate_latest(registry)
    return Response(body, mimetype="text/plain; version=0.0.4; charset=utf-8")


# --- the queue page -------------------------------------------------------------------------
def _queue_rows() -> list[dict[str, Any]]:
    rows = []
    for q in queue_depths():
        _, _, rest = q.queue.partition("--")
        service, _, method = rest.partition(".")
        rows.append({"queue": q.queue, "service": service_label(service), "method": method,
                     "messages": q.messages, "consumers": q.consumers, "dead": q.dead})
    return rows


@bp.get("/system/queues")
def queues() -> str:
    caller = auth.require_login()
    _page(caller, "queues")
    rows = _queue_rows()
    with_dead = [r["queue"] for r in rows if r["dead"]]
    letters = list_dead_letters(current_app.config["XUEJI_AMQP_URI"], with_dead) if with_dead else []
    return _render("queues.html", caller, [("系统监控", None), ("消息队列", None)],
                   rows=rows, letters=letters[:200], more=max(0, len(letters) - 200),
                   replayed=request.args.get("replayed"))


@bp.post("/system/queues/replay")
def replay_dead_letters() -> Any:
    caller = auth.require_login()
    _page(caller, "queues")
    queue = request.form.get("queue", "")
    if queue not in handler_queues():
        raise Invalid("未知的队列")
    event_id = request.form.get("event_id") or None
    count = replay(current_app.config["XUEJI_AMQP_URI"], [queue], event_id)
    # Recorded in the gateway's log with the operator (the dead letters are the broker's, not a service's).
    log.warning("dead letters replayed", extra={"fields": {
        "operator": caller.username, "role": caller.role, "queue": queue, "event_id": event_id, "count": count}})
    if count == 0 and event_id:
        raise Forbidden("该死信已不存在（可能已被重放）")
    return redirect(url_for("ops.queues", replayed=count))
