"""R3 as housing applies it: the copy, the bed and every stay follow a new student number, once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import eventlet
import pytest
from sqlalchemy import func, select, text

from services.common.db import Database
from services.common.envelope import Envelope, new_event
from services.common.errors import NotFound
from services.common.events import StudentNumberChanged
from services.common.models import AuditEntry, OutboxMessage
from services.common.testing import ROSTER, caller, class_changed
from services.housing import handlers, renames
from services.housing.adapters.orm import Bed, EarlyStatusChange, NumberAlias, Occupancy, Student
from services.housing.tests.factories import registered, room_beds, status_changed

OLD, NEW = "23110101150001", "202301010101"
CENTRE = caller("housing_centre")


def number_changed(old: str = OLD, new: str = NEW) -> Envelope:
    return new_event("student.number_changed",
                     StudentNumberChanged(old_number=old, new_number=new, changed_at=datetime.now(UTC)),
                     source="roster", actor=ROSTER)


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("housing")


def test_the_bed_and_stays_follow_the_new_number_once(db: Database) -> None:
    handlers.create_beds(db, CENTRE, room_beds())
    handlers.on_student_registered(db, registered(OLD))
    handlers.assign_bed(db, CENTRE, OLD, "1号楼-101-1")
    event = number_changed()
    renames.on_student_number_changed(db, event)
    renames.on_student_number_changed(db, event)  # redelivered: nothing more happens
    assert handlers.occupancy(db, CENTRE, NEW)["bed"]["label"] == "1号楼-101-1"
    with db.reading() as s:
        assert s.get(Student, OLD) is None and s.get(Student, NEW) is not None
        assert s.scalar(select(Bed.occupant).where(Bed.label == "1号楼-101-1")) == NEW
        assert set(s.scalars(select(Occupancy.student_number))) == {NEW}
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "student.renumber")).all()
        assert [(e.target, json.loads(e.before)) for e in entries] == [(NEW, {"student_number": OLD})]
    # the bed is still one student's: the old number cannot be given another
    assert handlers.occupancy(db, CENTRE, NEW)["student_number"] == NEW


def test_a_rename_before_the_registration_is_retried(db: Database) -> None:
    event = number_changed()
    with pytest.raises(NotFound):
        renames.on_student_number_changed(db, event)
    handlers.on_student_registered(db, registered(OLD))
    renames.on_student_number_changed(db, event)  # the retry applies it
    with db.reading() as s:
        assert s.get(Student, NEW) is not None and s.get(Student, OLD) is None


def test_a_newer_copy_under_the_new_number_wins(db: Database) -> None:
    handlers.on_student_registered(db, registered(OLD))
    handlers.on_student_registered(db, registered(NEW, klass="2023010102"))
    renames.on_student_number_changed(db, number_changed())
    with db.reading() as s:
        assert s.get(Student, OLD) is None and s.get(Student, NEW).class_code == "2023010102"
        assert s.scalar(select(func.count()).select_from(Student)) == 1


# --- events for the former number, overtaken by the rename (each type has its own queue) ---------

def test_a_late_status_change_for_the_former_number_releases_the_renamed_students_bed_once(db: Database) -> None:
    handlers.create_beds(db, CENTRE, room_beds())
    handlers.on_student_registered(db, registered(OLD))
    handlers.assign_bed(db, CENTRE, OLD, "1号楼-101-1")
    renames.on_student_number_changed(db, number_changed())
    late = status_changed(OLD, 7, "withdrawn")
    handlers.on_student_status_changed(db, late)
    handlers.on_student_status_changed(db, late)  # redelivered: nothing more happens
    assert handlers.occupancy(db, CENTRE, NEW)["bed"] is None
    with db.reading() as s:
        student = s.get(Student, NEW)
        assert (student.status, student.left, student.last_change_id) == ("withdrawn", True, 7)
        assert s.get(Student, OLD) is None and s.get(EarlyStatusChange, OLD) is None
        assert s.scalar(select(Occupancy.end_reason).where(Occupancy.student_number == NEW)) is not None
        released = s.scalars(select(OutboxMessage.body).where(OutboxMessage.event_type == "housing.bed_released")).all()
        assert [json.loads(b)["payload"]["student_number"] for b in released] == [NEW]


def test_a_late_older_change_for_the_former_number_does_not_undo_a_newer_one(db: Database) -> None:
    handlers.on_student_registered(db, registered(OLD))
    renames.on_student_number_changed(db, number_changed())
    handlers.on_student_status_changed(db, status_changed(NEW, 9, "suspended", left=False))
    handlers.on_student_status_changed(db, status_changed(OLD, 8, "graduated"))  # older snapshot, late
    with db.reading() as s:
        assert (s.get(Student, NEW).status, s.get(Student, NEW).last_change_id) == ("suspended", 9)


def test_a_late_registration_or_class_move_for_the_former_number_updates_the_renamed_copy(db: Database) -> None:
    handlers.on_student_registered(db, registered(OLD))
    renames.on_student_number_changed(db, number_changed())
    handlers.on_student_registered(db, registered(OLD, name="李娜娜"))
    handlers.on_student_class_changed(db, class_changed(OLD, 3, "2023010102", old_class="2023010101"))
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Student)) == 1
        assert (s.get(Student, NEW).name, s.get(Student, NEW).class_code) == ("李娜娜", "2023010102")


def test_a_chain_of_renames_resolves_to_the_last_number(db: Database) -> None:
    third = "202301010199"
    handlers.on_student_registered(db, registered(OLD))
    renames.on_student_number_changed(db, number_changed())
    renames.on_student_number_changed(db, number_changed(NEW, third))
    handlers.on_student_status_changed(db, status_changed(OLD, 4, "withdrawn"))
    with db.reading() as s:
        assert dict(s.execute(select(NumberAlias.old_number, NumberAlias.new_number)).all()) == {
            OLD: third, NEW: third}
        assert s.get(Student, third).last_change_id == 4
        assert s.scalar(select(func.count()).select_from(Student)) == 1


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_a_status_change_waiting_for_a_rename_in_progress_follows_it(db: Database, db_backend: str) -> None:
    """The rename holds both numbers' locks; a change for the old number that waited for them must look
    the number up again once it has them, or it would be parked under a number no one has any more."""
    handlers.create_beds(db, CENTRE, room_beds())
    handlers.on_student_registered(db, registered(OLD))
    handlers.assign_bed(db, CENTRE, OLD, "1号楼-101-1")
    workers = [Database(db.url) for _ in range(3)]

    def waiting(locktype: str) -> int:
        with workers[2].reading() as s:
            return s.scalar(text("SELECT count(*) FROM pg_locks WHERE locktype = :t AND NOT granted"), {"t": locktype})

    def until(predicate: Callable[[], bool]) -> None:
        for _ in range(200):
            if predicate():
                return
            eventlet.sleep(0.05)
        raise AssertionError("the transactions never reached the expected wait")

    try:
        with db.transaction() as hold:  # keeps the rename inside its transaction, its locks held
            hold.execute(text("SELECT 1 FROM students WHERE student_number = :n FOR UPDATE"), {"n": OLD})
            rename = eventlet.spawn(renames.on_student_number_changed, workers[0], number_changed())
            until(lambda: waiting("transactionid") == 1)
            change = eventlet.spawn(handlers.on_student_status_changed, workers[1], status_changed(OLD, 7, "withdrawn"))
            until(lambda: waiting("advisory") == 1)
        rename.wait()
        change.wait()
    finally:
        for worker in workers:
            worker.dispose()
    assert handlers.occupancy(db, CENTRE, NEW)["bed"] is None
    with db.reading() as s:
        assert s.get(EarlyStatusChange, OLD) is None and s.get(EarlyStatusChange, NEW) is None
        assert s.get(Student, NEW).last_change_id == 7
