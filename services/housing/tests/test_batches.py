"""Status changes applied as a batch (one transaction) give what one-by-one would give."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from services.common.db import Database
from services.common.models import InboxRecord, OutboxMessage
from services.housing import handlers
from services.housing.adapters.orm import EarlyStatusChange, Occupancy, Student
from services.housing.tests.factories import caller, registered, room_beds, status_changed

CENTRE = caller("housing_centre")
A, B, C, LATE = "202301010101", "202301010103", "202301010105", "202301010107"
STATUS_INBOX = InboxRecord.consumer == "housing.on_student_status_changed"


@pytest.fixture
def campus(migrated_db: Callable[[str], Database]) -> Database:
    db = migrated_db("housing")
    handlers.create_beds(db, CENTRE, room_beds("B1", "1号楼", "M", "101"))
    for number in (A, B, C):
        handlers.on_student_registered(db, registered(number))
    for number, bed in ((A, "1"), (B, "2"), (C, "3")):
        handlers.assign_bed(db, CENTRE, number, f"1号楼-101-{bed}")
    return db


def count(db: Database, what: object, *where: object) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(what).where(*where)) or 0


def test_a_mixed_batch_applies_each_event_as_if_alone(campus: Database) -> None:
    leave_a = status_changed(A, 7, "graduated", left=True)
    handlers.on_student_status_changed(
        campus,
        leave_a,
        leave_a,                                                        # repeated in the batch
        status_changed(B, 9, "enrolled", left=False, revokes=8),        # newer first …
        status_changed(B, 8, "graduated", left=True),                   # … older ignored
        status_changed(C, 4, "suspended", left=False),                  # keeps the bed
        status_changed(LATE, 5, "graduated", left=True),                # not registered yet
    )
    assert handlers.occupancy(campus, CENTRE, A)["bed"] is None
    assert handlers.occupancy(campus, CENTRE, B)["bed"]["label"] == "1号楼-101-2"
    assert handlers.occupancy(campus, CENTRE, C)["bed"]["label"] == "1号楼-101-3"
    assert count(campus, Occupancy, Occupancy.ended_at.is_not(None)) == 1
    assert count(campus, OutboxMessage) == 1
    assert count(campus, EarlyStatusChange) == 1
    assert count(campus, InboxRecord, STATUS_INBOX) == 5
    with campus.reading() as s:
        assert s.get(Student, B).last_change_id == 9  # type: ignore[union-attr]
    # a redelivery, and the same change sent again under a new event id: no further effect
    handlers.on_student_status_changed(campus, leave_a, status_changed(A, 7, "graduated", left=True))
    assert count(campus, OutboxMessage) == 1 and count(campus, InboxRecord, STATUS_INBOX) == 6
    assert count(campus, Occupancy, Occupancy.ended_at.is_not(None)) == 1
