"""Structured JSON logs carrying the correlation id of the request being served."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime

# threading.local is green once eventlet has monkey-patched, so each worker has its own.
_context = threading.local()


def bind_correlation_id(correlation_id: str | None) -> None:
    _context.correlation_id = correlation_id


def clear_correlation_id() -> None:
    _context.correlation_id = None


def current_correlation_id() -> str | None:
    return getattr(_context, "correlation_id", None)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service or os.environ.get("XUEJI_SERVICE", "")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
            "correlation_id": current_correlation_id(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(service: str = "", level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("XUEJI_LOG_LEVEL", "INFO"))
