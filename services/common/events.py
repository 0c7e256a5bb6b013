"""Payload schemas of every event type, shared by producers and consumers.

Each model is registered under (type, version). Producers build payloads with these
models; consumers validate with them (via `parse_envelope`). Payloads carry ids and the
fields consumers need, never whole rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from services.common.errors import InvalidEvent

STUDENT_NUMBER = r"^[0-9A-Za-z]{6,20}$"


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    VERSION: ClassVar[int] = 1


class StudentRegistered(Payload):
    """roster → identity (account), housing, aid, transfer (read copies)."""

    student_number: str = Field(pattern=STUDENT_NUMBER)
    name: str = Field(min_length=1, max_length=64)
    gender: str = Field(pattern=r"^[12]$")  # GB/T 2261.1: 1 男, 2 女
    college_code: str
    class_code: str
    status: str
    left: bool  # True once the student has left the institution (graduated, withdrew…)


class StudentStatusChanged(Payload):
    """roster → identity (deactivate/reactivate), housing (release bed), aid."""

    student_number: str = Field(pattern=STUDENT_NUMBER)
    change_id: int
    old_status: str
    new_status: str
    left: bool
    reason: str
    effective_at: datetime
    revokes_change_id: int | None = None


class BedReleased(Payload):
    """housing → roster (pending-graduation list): the student no longer holds a bed."""

    student_number: str = Field(pattern=STUDENT_NUMBER)
    bed_label: str
    released_on: date
    reason: str


REGISTRY: dict[tuple[str, int], type[Payload]] = {
    ("student.registered", 1): StudentRegistered,
    ("student.status_changed", 1): StudentStatusChanged,
    ("housing.bed_released", 1): BedReleased,
}


def payload_model(event_type: str, version: int) -> type[Payload]:
    try:
        return REGISTRY[(event_type, version)]
    except KeyError:
        raise InvalidEvent(f"unknown event type {event_type!r} version {version}") from None
