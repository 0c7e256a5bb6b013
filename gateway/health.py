"""The services' health, asked of all at once (for `/api/v1/health` and the status page)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from gateway import auth
from gateway.rpc import ServiceUnavailable, service_label


def service_health() -> tuple[bool, dict[str, dict[str, Any]]]:
    """Every service's `health()` with a short timeout: (all ok?, answer per service)."""
    names = current_app.config["XUEJI_HEALTH_SERVICES"]
    outcomes = auth.rpc().call_many(
        {name: (name, "health") for name in names},
        timeout=current_app.config["XUEJI_HEALTH_TIMEOUT"],
    )
    services: dict[str, dict[str, Any]] = {}
    for name in names:
        outcome = outcomes[name]
        if outcome.ok and isinstance(outcome.value, dict):
            services[name] = {**outcome.value, "status": outcome.value.get("status", "ok")}
        elif isinstance(outcome.error, ServiceUnavailable):
            services[name] = {"status": "unavailable"}
        else:
            # It answered, but with an error: up, yet not healthy.
            services[name] = {"status": "error"}
    return all(s["status"] == "ok" for s in services.values()), services


def labelled(services: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for the status page: Chinese name, status and the service's own figures."""
    rows = []
    for name, answer in services.items():
        details = {k: v for k, v in answer.items() if k not in ("service", "status")}
        rows.append({"name": name, "label": service_label(name), "status": answer["status"],
                     "details": details})
    return rows
