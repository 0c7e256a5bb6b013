"""Builders for tests of any service: roster's events as consumers receive them, callers."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from services.common.caller import Caller, Scope
from services.common.envelope import Actor, Envelope, new_event
from services.common.events import (
    OrgUnitsChanged,
    OrgUnitState,
    StudentClassChanged,
    StudentRegistered,
    StudentStatusChanged,
)

ROSTER = Actor(kind="system", id="roster")


def registered(number: str = "202301010105", *, name: str = "李娜", gender: str = "2",
               klass: str = "2023010101", status: str = "enrolled", left: bool = False,
               occurred_at: datetime | None = None) -> Envelope:
    return new_event(
        "student.registered",
        StudentRegistered(student_number=number, name=name, gender=gender, college_code=klass[4:6],
                          class_code=klass, status=status, left=left),
        source="roster", actor=ROSTER, occurred_at=occurred_at,
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


def class_changed(number: str, move_id: int, new_class: str, *, old_class: str | None = None,
                  occurred_at: datetime | None = None) -> Envelope:
    """调班: `number` moved from its own class (by default, read from the number, R6) to `new_class`."""
    old = old_class or number[:10]
    return new_event(
        "student.class_changed",
        StudentClassChanged(student_number=number, move_id=move_id, old_class_code=old, new_class_code=new_class,
                            old_college_code=old[4:6], new_college_code=new_class[4:6], reason="调整班级"),
        source="roster", actor=ROSTER, correlation_id=f"move-{move_id}", occurred_at=occurred_at,
    )


def org_units_changed(*units: tuple[str, str, str | None], occurred_at: datetime | None = None) -> Envelope:
    """roster's org.units_changed for `units` given as (code, kind, parent_code); names made up."""
    labels = {"college": "学院", "major": "专业", "class": "班级"}
    return new_event(
        "org.units_changed",
        OrgUnitsChanged(units=[OrgUnitState(code=code, name=f"{labels[kind]}{code}", kind=kind,  # type: ignore[arg-type]
                                            parent_code=parent) for code, kind, parent in units]),
        source="roster", actor=ROSTER, occurred_at=occurred_at,
    )


def caller(role: str, kind: str = "institution", *ids: str) -> Caller:
    """A caller of `role` whose scope is `kind` over `ids`."""
    return Caller(user_id=f"u-{role}", username=f"{role}01", role=role,
                  scope=Scope(kind=kind, ids=tuple(ids)))  # type: ignore[arg-type]


def publish(amqp_uri: str, envelope: Envelope) -> None:
    """Publish an envelope as its source's relay would: persistent JSON on `<source>.events`."""
    from kombu import Connection, Exchange

    exchange = Exchange(f"{envelope.source}.events", type="topic", durable=True)
    with Connection(amqp_uri) as conn:
        conn.Producer().publish(envelope.to_wire(), exchange=exchange, routing_key=envelope.type,
                                serializer="json", delivery_mode=2, declare=[exchange])


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll until `check()` is true; fail the test if the effect does not appear in time."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the effect did not appear in time"
        time.sleep(0.05)


def drop_audit_guard(session: Any) -> None:
    """Tamper tests play someone with DDL rights: first remove the append-only triggers."""
    from sqlalchemy import text

    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log"))
    else:
        session.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        session.execute(text("DROP TRIGGER IF EXISTS audit_log_keep"))
