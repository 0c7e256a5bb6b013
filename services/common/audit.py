"""Audit trail of writes, kept in each service's own database (`audit_log`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from services.common.caller import Caller
from services.common.models import AuditEntry

# Never written to the audit log, whatever a caller passes in.
_SECRET_KEYS = {"password", "password_hash", "new_password", "old_password"}


def _clean(value: dict[str, Any] | None) -> str | None:
    if value is None:
        return None
    return json.dumps({k: v for k, v in value.items() if k not in _SECRET_KEYS},
                      ensure_ascii=False, default=str)


def audit(session: Session, caller: Caller, action: str, target: str,
          before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    """Record a write in the same transaction as the write itself."""
    session.add(AuditEntry(
        at=datetime.now(UTC),
        actor=caller.username,
        role=caller.role,
        action=action,
        target=target,
        before=_clean(before),
        after=_clean(after),
        correlation_id=caller.correlation_id,
    ))
