"""Payload schemas of every event type, shared by producers and consumers.

Each model is registered under (type, version). Producers build payloads with these
models; consumers validate with them (via `parse_envelope`). Payloads carry ids and the
fields consumers need, never whole rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class StudentNumberChanged(Payload):
    """roster → identity (the account follows the number, I5), other read copies: a student's
    number replaced (R3 mapping, transfer-in). The record is the same person; `national_id`
    lets consumers check that (None for students registered without one, R13)."""

    old_number: str = Field(pattern=STUDENT_NUMBER)
    new_number: str = Field(pattern=STUDENT_NUMBER)
    national_id: str | None = Field(default=None, max_length=18)
    changed_at: datetime


class StudentMerged(Payload):
    """roster → read copies (identity: retire the removed number's account): a verified duplicate
    record (R7, R14) was removed; `kept_number` is the same person's remaining record."""

    removed_number: str = Field(pattern=STUDENT_NUMBER)
    kept_number: str = Field(pattern=STUDENT_NUMBER)
    merged_at: datetime


class StudentClassChanged(Payload):
    """roster → identity (scopes by class), housing, aid, transfer (read copies): a student moved
    between classes (调班, R9); the college follows the new class. `move_id` orders moves."""

    student_number: str = Field(pattern=STUDENT_NUMBER)
    move_id: int
    old_class_code: str
    new_class_code: str
    old_college_code: str
    new_college_code: str
    reason: str


class OrgUnitState(Payload):
    """One org unit as roster now holds it (college → major → class, R6 codes)."""

    code: str
    name: str
    kind: Literal["college", "major", "class"]
    parent_code: str | None = None


class OrgUnitsChanged(Payload):
    """roster → identity (org read model: a class's college for grants and scope checks): the
    units one `upsert_org_units` saved, each as it is after the save, and the codes of units
    deleted (`delete_org_unit`; optional, so earlier v1 payloads still read)."""

    units: list[OrgUnitState] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _says_something(self) -> OrgUnitsChanged:
        if not self.units and not self.removed:
            raise ValueError("units or removed must name at least one unit")
        return self


REGISTRY: dict[tuple[str, int], type[Payload]] = {
    ("student.registered", 1): StudentRegistered,
    ("student.status_changed", 1): StudentStatusChanged,
    ("student.number_changed", 1): StudentNumberChanged,
    ("student.merged", 1): StudentMerged,
    ("student.class_changed", 1): StudentClassChanged,
    ("housing.bed_released", 1): BedReleased,
    ("org.units_changed", 1): OrgUnitsChanged,
}


# Types the outbox relay publishes several to a message (a pack: a JSON array of envelopes, see
# `relay.packed`). Only high-volume types whose every consumer is a `batch_event_handler`: one
# message then carries a batch's worth, and the broker and the consumers handle one message instead
# of fifty (`services/common/tests/test_packs.py` checks every consumer). Single-event handlers still
# accept a pack, by re-publishing its events one by one.
PACKED_TYPES = frozenset({"student.status_changed", "housing.bed_released"})


def payload_model(event_type: str, version: int) -> type[Payload]:
    try:
        return REGISTRY[(event_type, version)]
    except KeyError:
        raise InvalidEvent(f"unknown event type {event_type!r} version {version}") from None
