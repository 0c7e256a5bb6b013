"""R3 as aid applies it: the register copy, needy record, application, award and instalments follow a
new student number, once; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from services.aid import handlers, renames
from services.aid.adapters.orm import Application, Award, Instalment, NeedyRecord, Student
from services.common.db import Database
from services.common.envelope import Envelope, new_event
from services.common.errors import NotFound
from services.common.events import StudentNumberChanged
from services.common.models import AuditEntry
from services.common.testing import ROSTER, caller, class_changed, registered, status_changed

OLD, NEW = "23110101150001", "202301010101"


def number_changed() -> Envelope:
    return new_event("student.number_changed",
                     StudentNumberChanged(old_number=OLD, new_number=NEW, changed_at=datetime.now(UTC)),
                     source="roster", actor=ROSTER)


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("aid")


def seed_records(db: Database, number: str) -> None:
    now = datetime.now(UTC)
    with db.transaction() as s:
        s.add(NeedyRecord(student_number=number, academic_year="2026-2027", level="difficult", reasons="家庭困难",
                          collected_by="c", collected_role="counselor", identified_at=now))
        app = Application(student_number=number, college_code="01", class_code="2023010101", programme_code="NG",
                          academic_year="2026-2027", amount=3300, statement="申请", status="submitted",
                          collected_by="c", collected_role="counselor", created_at=now, updated_at=now)
        s.add(app)
        s.flush()
        award = Award(application_id=app.id, student_number=number, programme_code="NG", academic_year="2026-2027",
                      amount=3300, awarded_on=date(2026, 11, 1), payer="p")
        s.add(award)
        s.flush()
        s.add(Instalment(award_id=award.id, student_number=number, seq=1, due_on=date(2026, 12, 1), amount=3300,
                         state="due"))


def test_every_aid_record_follows_the_new_number_once(db: Database) -> None:
    handlers.on_student_registered(db, registered(OLD))
    seed_records(db, OLD)
    event = number_changed()
    renames.on_student_number_changed(db, event)
    renames.on_student_number_changed(db, event)  # redelivered: nothing more happens
    assert handlers.enrolled_student(db, caller("aid_operator"), NEW)["student_number"] == NEW
    with db.reading() as s:
        assert s.get(Student, OLD) is None
        for model in (NeedyRecord, Application, Award, Instalment):
            assert set(s.scalars(select(model.student_number))) == {NEW}, model
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "student.renumber")).one()
        moved = json.loads(entry.after)["moved"]
        assert moved == {"needy_records": 1, "applications": 1, "awards": 1, "instalments": 1}


def test_a_rename_before_the_registration_is_retried(db: Database) -> None:
    event = number_changed()
    with pytest.raises(NotFound):
        renames.on_student_number_changed(db, event)
    handlers.on_student_registered(db, registered(OLD))
    renames.on_student_number_changed(db, event)
    with db.reading() as s:
        assert s.get(Student, NEW) is not None and s.get(Student, OLD) is None


# --- events for the former number, overtaken by the rename (each type has its own queue) ---------

def test_a_late_leaving_change_for_the_former_number_stops_the_renamed_students_instalments_once(
        db: Database) -> None:
    handlers.on_student_registered(db, registered(OLD))
    renames.on_student_number_changed(db, number_changed())
    late = status_changed(OLD, 7, "withdrawn")
    handlers.on_student_status_changed(db, late)
    handlers.on_student_status_changed(db, late)  # redelivered: nothing more happens
    with db.reading() as s:
        row = s.get(Student, NEW)
        assert (row.status, row.left, row.stop_instalments, row.last_change_id) == ("withdrawn", True, True, 7)
        assert s.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.action == "instalments.stop", AuditEntry.target == NEW)) == 1
    handlers.on_student_status_changed(db, status_changed(OLD, 6, "enrolled", left=False))  # older, later still
    with db.reading() as s:
        assert s.get(Student, NEW).stop_instalments and s.get(Student, NEW).last_change_id == 7


def test_a_late_registration_for_the_former_number_makes_no_second_copy(db: Database) -> None:
    handlers.on_student_registered(db, registered(OLD))
    renames.on_student_number_changed(db, number_changed())
    handlers.on_student_registered(db, registered(OLD, name="李 娜"))
    handlers.on_student_class_changed(db, class_changed(OLD, 3, "2023010102", old_class="2023010101"))
    with db.reading() as s:
        assert s.get(Student, OLD) is None
        assert s.scalar(select(func.count()).select_from(Student)) == 1
        assert (s.get(Student, NEW).name, s.get(Student, NEW).class_code) == ("李 娜", "2023010102")
