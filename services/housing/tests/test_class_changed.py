"""调班 (R9) as housing applies it: the read copy follows, the bed stays; exactly once."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from services.common.db import Database
from services.common.errors import Forbidden, NotFound
from services.common.models import InboxRecord
from services.common.testing import caller, class_changed
from services.housing import handlers
from services.housing.adapters.orm import Student
from services.housing.tests.factories import registered, room_beds

NUMBER = "202301010101"
OLD, NEW = "2023010101", "2023020101"
CENTRE = caller("housing_centre")


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("housing")


def place(db: Database) -> tuple[str, str]:
    with db.reading() as s:
        row = s.get(Student, NUMBER)
        assert row is not None
        return row.class_code, row.college_code


def inbox(db: Database) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(InboxRecord)) or 0


def test_a_class_move_keeps_the_bed_and_applies_once(db: Database) -> None:
    handlers.create_beds(db, CENTRE, room_beds())
    handlers.on_student_registered(db, registered(NUMBER, klass=OLD))
    handlers.assign_bed(db, CENTRE, NUMBER, "1号楼-101-1")
    move = class_changed(NUMBER, 1, NEW)
    handlers.on_student_class_changed(db, move)
    assert place(db) == (NEW, "02")
    assert handlers.occupancy(db, CENTRE, NUMBER)["bed"]["label"] == "1号楼-101-1"
    # The new class's counselor sees the student's housing; the old one no longer does.
    assert handlers.occupancy(db, caller("counselor", "classes", NEW), NUMBER)["bed"] is not None
    with pytest.raises(Forbidden):
        handlers.occupancy(db, caller("counselor", "classes", OLD), NUMBER)

    handlers.on_student_class_changed(db, class_changed(NUMBER, 2, "2023020102", old_class=NEW))
    inboxed = inbox(db)
    handlers.on_student_class_changed(db, move)  # redelivered: must not undo the later move
    assert place(db) == ("2023020102", "02")
    assert inbox(db) == inboxed


def test_an_early_move_waits_for_the_registration(db: Database) -> None:
    registration = registered(NUMBER, klass=OLD)
    move = class_changed(NUMBER, 1, NEW)  # made after the registration, delivered before it
    with pytest.raises(NotFound):
        handlers.on_student_class_changed(db, move)
    handlers.on_student_registered(db, registration)
    handlers.on_student_class_changed(db, move)  # the retry: the failed delivery was not recorded
    assert place(db) == (NEW, "02")
