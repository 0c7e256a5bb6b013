"""Roster events as identity receives them, callers of each role, and accounts to log in with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.common.caller import Caller, Scope, system_caller
from services.common.db import Database
from services.common.envelope import Actor, Envelope, new_event
from services.common.events import StudentRegistered, StudentStatusChanged
from services.identity import handlers

ROSTER = Actor(kind="system", id="roster")
SYSTEM = system_caller("test")
PASSWORD = "Xueji-2027-pass"  # meets the policy: 15 characters, four classes


def registered(number: str = "202301010105", *, name: str = "李娜", klass: str = "2023010101",
               left: bool = False, status: str = "enrolled") -> Envelope:
    return new_event(
        "student.registered",
        StudentRegistered(student_number=number, name=name, gender="2", college_code=klass[4:6],
                          class_code=klass, status=status, left=left),
        source="roster", actor=ROSTER,
    )


def status_changed(number: str, change_id: int, new_status: str = "graduated", *, left: bool = True,
                   old_status: str = "enrolled", revokes: int | None = None) -> Envelope:
    return new_event(
        "student.status_changed",
        StudentStatusChanged(student_number=number, change_id=change_id, old_status=old_status,
                             new_status=new_status, left=left, reason="离校系统通知",
                             effective_at=datetime(2027, 6, 30, tzinfo=UTC), revokes_change_id=revokes),
        source="roster", actor=ROSTER, correlation_id=f"corr-{change_id}",
    )


def caller(username: str, role: str, kind: str = "institution", *ids: str) -> Caller:
    return Caller(user_id=username, username=username, role=role,
                  scope=Scope(kind=kind, ids=tuple(ids)))  # type: ignore[arg-type]


def staff(db: Database, username: str = "1000001", role: str = "student_affairs", kind: str = "institution",
          ids: tuple[str, ...] = (), name: str = "张老师", password: str = PASSWORD) -> dict[str, Any]:
    """A staff account created by the system (so no forced password change)."""
    return handlers.create_account(db, SYSTEM, username, name, role, kind, list(ids), password)
