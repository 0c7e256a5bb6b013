"""Roster events as housing receives them, callers of each role, and bed lists."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.common.caller import Caller, Scope
from services.common.envelope import Actor, Envelope, new_event
from services.common.events import StudentRegistered, StudentStatusChanged

ROSTER = Actor(kind="system", id="roster")


def registered(number: str = "202301010105", *, gender: str = "1", name: str = "张伟",
               status: str = "enrolled", left: bool = False, klass: str = "2023010101") -> Envelope:
    return new_event(
        "student.registered",
        StudentRegistered(student_number=number, name=name, gender=gender, college_code=klass[4:6],
                          class_code=klass, status=status, left=left),
        source="roster", actor=ROSTER,
    )


def status_changed(number: str, change_id: int, new_status: str, *, left: bool,
                   old_status: str = "enrolled", revokes: int | None = None) -> Envelope:
    return new_event(
        "student.status_changed",
        StudentStatusChanged(student_number=number, change_id=change_id, old_status=old_status,
                             new_status=new_status, left=left, reason="离校系统通知",
                             effective_at=datetime(2027, 6, 30, tzinfo=UTC),
                             revokes_change_id=revokes),
        source="roster", actor=ROSTER, correlation_id=f"corr-{change_id}",
    )


def caller(role: str, kind: str = "institution", *ids: str) -> Caller:
    return Caller(user_id=f"u-{role}", username=f"{role}01", role=role,
                  scope=Scope(kind=kind, ids=tuple(ids)))  # type: ignore[arg-type]


def room_beds(building_code: str = "B1", building_name: str = "1号楼", policy: str = "M",
              room_no: str = "101", capacity: int = 4, beds: int = 4) -> list[dict[str, Any]]:
    """The beds of one room as the housing centre submits them."""
    return [{"building_code": building_code, "building_name": building_name, "gender_policy": policy,
             "room_no": room_no, "capacity": capacity, "bed_no": str(n)} for n in range(1, beds + 1)]
