"""Roster events as identity receives them, callers of each role, and accounts to log in with."""

from __future__ import annotations

from typing import Any

from services.common.caller import Caller, Scope, system_caller
from services.common.db import Database
from services.common.testing import registered, status_changed  # noqa: F401  (re-exported)
from services.identity import handlers

SYSTEM = system_caller("test")
PASSWORD = "Xueji-2027-pass"  # meets the policy: 15 characters, four classes


def caller(username: str, role: str, kind: str = "institution", *ids: str) -> Caller:
    return Caller(user_id=username, username=username, role=role,
                  scope=Scope(kind=kind, ids=tuple(ids)))  # type: ignore[arg-type]


def staff(db: Database, username: str = "1000001", role: str = "student_affairs", kind: str = "institution",
          ids: tuple[str, ...] = (), name: str = "张老师", password: str = PASSWORD) -> dict[str, Any]:
    """A staff account created by the system (so no forced password change)."""
    return handlers.create_account(db, SYSTEM, username, name, role, kind, list(ids), password)
