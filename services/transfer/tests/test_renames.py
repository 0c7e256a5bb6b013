"""R3 as transfer applies it: the copy, internal changes and our side's number on transfers follow a
new student number (the peer's numbers stay), once; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from services.common.db import Database
from services.common.envelope import Envelope, new_event
from services.common.errors import NotFound
from services.common.events import StudentNumberChanged
from services.common.testing import ROSTER, class_changed, registered, status_changed
from services.transfer import handlers, renames
from services.transfer.adapters.orm import InternalChange, Student, Transfer

OLD, NEW = "23110101150001", "202301010101"


def number_changed() -> Envelope:
    return new_event("student.number_changed",
                     StudentNumberChanged(old_number=OLD, new_number=NEW, changed_at=datetime.now(UTC)),
                     source="roster", actor=ROSTER)


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("transfer")


def transfer(tid: str, direction: str, out_number: str | None, in_number: str | None) -> Transfer:
    now = datetime.now(UTC)
    return Transfer(id=tid, direction=direction, peer_code="10001", state="outflow_school",
                    transfer_kind="intra_province", national_student_id="G1", name="李娜", gender="2",
                    birth_date="2005-01-01", id_type="1", id_number="110101200501011234",
                    outflow_student_number=out_number, inflow_student_number=in_number, reason="r", filed_by="f",
                    created_at=now, updated_at=now)


def test_our_numbers_follow_the_new_number_once(db: Database) -> None:
    handlers.on_student_registered(db, registered(OLD))
    now = datetime.now(UTC)
    with db.transaction() as s:
        s.add(transfer("t-out", "outflow", OLD, None))
        s.add(transfer("t-in", "inflow", OLD, OLD))  # the peer happens to use the same digits: theirs stays
        s.add(InternalChange(student_number=OLD, kind="major", from_unit="0101", to_unit="0102",
                             to_class_code="2023010201", reason="r", state="pending_left", filed_by="f",
                             created_at=now, updated_at=now))
    event = number_changed()
    renames.on_student_number_changed(db, event)
    renames.on_student_number_changed(db, event)
    with db.reading() as s:
        assert s.get(Student, OLD) is None and s.get(Student, NEW) is not None
        assert s.get(Transfer, "t-out").outflow_student_number == NEW
        inflow = s.get(Transfer, "t-in")
        assert (inflow.outflow_student_number, inflow.inflow_student_number) == (OLD, NEW)
        assert set(s.scalars(select(InternalChange.student_number))) == {NEW}


def test_a_rename_before_the_registration_is_retried(db: Database) -> None:
    with pytest.raises(NotFound):
        renames.on_student_number_changed(db, number_changed())


# --- events for the former number, overtaken by the rename (each type has its own queue) ---------

def test_a_late_status_change_for_the_former_number_reaches_the_renamed_copy_once(db: Database) -> None:
    handlers.on_student_registered(db, registered(OLD))
    renames.on_student_number_changed(db, number_changed())
    late = status_changed(OLD, 7, "withdrawn")
    handlers.on_student_status_changed(db, late)
    handlers.on_student_status_changed(db, late)  # redelivered: nothing more happens
    handlers.on_student_status_changed(db, status_changed(OLD, 6, "enrolled", left=False))  # older, later still
    with db.reading() as s:
        row = s.get(Student, NEW)
        assert (row.status, row.left, row.last_change_id) == ("withdrawn", True, 7)
        assert s.get(Student, OLD) is None


def test_a_late_registration_for_the_former_number_makes_no_second_copy(db: Database) -> None:
    handlers.on_student_registered(db, registered(OLD))
    renames.on_student_number_changed(db, number_changed())
    handlers.on_student_registered(db, registered(OLD, name="李 娜"))
    handlers.on_student_class_changed(db, class_changed(OLD, 3, "2023010102", old_class="2023010101"))
    with db.reading() as s:
        assert s.get(Student, OLD) is None
        assert s.scalar(select(func.count()).select_from(Student)) == 1
        assert (s.get(Student, NEW).name, s.get(Student, NEW).class_code) == ("李 娜", "2023010102")
