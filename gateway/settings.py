"""Gateway settings, read from the environment; `create_app(config)` may override any."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

from gateway.rpc import timeout_from_env
from services.catalog import SERVICES

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def load(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Flask config for the gateway: environment first, then `overrides`."""
    production = os.environ.get("XUEJI_ENV", "development") == "production"
    config: dict[str, Any] = {
        "XUEJI_PRODUCTION": production,
        "XUEJI_AMQP_URI": os.environ.get("XUEJI_AMQP_URI") or DEFAULT_AMQP_URI,
        "XUEJI_RPC_TIMEOUT": timeout_from_env(),
        # Health must answer fast even when a service hangs.
        "XUEJI_HEALTH_TIMEOUT": 2.0,
        "XUEJI_HEALTH_SERVICES": tuple(SERVICES),
        "XUEJI_METRICS_TOKEN": os.environ.get("XUEJI_METRICS_TOKEN", ""),
        "XUEJI_CONFIGURE_LOGGING": True,
        # Number of reverse proxies in front of the gateway whose X-Forwarded-For to trust.
        "XUEJI_PROXY_COUNT": int(os.environ.get("XUEJI_PROXY_COUNT", "0")),
        # Printed on 在校证明, 学籍卡 and password slips (gateway/print_web.py).
        "XUEJI_SCHOOL_NAME": os.environ.get("XUEJI_SCHOOL_NAME") or "示例大学",
        "SECRET_KEY": os.environ.get("XUEJI_SECRET_KEY") or None,
        "SESSION_COOKIE_NAME": "xueji_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _flag("XUEJI_COOKIE_SECURE", production),
        "JSON_AS_ASCII": False,
        # Any request body (413 beyond): the largest upload, a 100 MB photo zip, as base64 in a JSON body.
        "MAX_CONTENT_LENGTH": 140 * 1024 * 1024,
    }
    config.update(overrides or {})
    if not config["SECRET_KEY"]:
        if config["XUEJI_PRODUCTION"]:
            raise RuntimeError("XUEJI_SECRET_KEY must be set when XUEJI_ENV=production")
        # Sessions then last only as long as this process: fine for development.
        # create_app logs the warning once logging is configured.
        config["SECRET_KEY"] = secrets.token_urlsafe(32)
        config["XUEJI_SECRET_GENERATED"] = True
    return config
