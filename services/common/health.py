"""What every service's `health()` RPC reports: the database answers, the outbox backlog, counts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from services.common.db import Database
from services.common.outbox import unpublished_count


def health_report(db: Database, service: str, **counts: Any) -> dict[str, Any]:
    """`counts`: name → a mapped class or a subquery whose rows are counted."""
    with db.reading() as s:
        numbers = {name: s.scalar(select(func.count()).select_from(what)) or 0
                   for name, what in counts.items()}
        backlog = unpublished_count(s)
    return {"service": service, "status": "ok", "db": "ok", "outbox_backlog": backlog, **numbers}
