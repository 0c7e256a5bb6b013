"""调班 (R9) as aid applies it to the enrolled register, exactly once, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from services.aid import handlers
from services.aid.adapters.orm import Student
from services.common.db import Database
from services.common.errors import Forbidden, NotFound
from services.common.models import InboxRecord
from services.common.testing import caller, class_changed, registered

NUMBER = "202301010105"
OLD, NEW = "2023010101", "2023020101"


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("aid")


def place(db: Database) -> tuple[str, str]:
    with db.reading() as s:
        row = s.get(Student, NUMBER)
        assert row is not None
        return row.class_code, row.college_code


def inbox(db: Database) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(InboxRecord)) or 0


def test_a_class_move_applies_once_and_moves_the_scope(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER, klass=OLD))
    move = class_changed(NUMBER, 1, NEW)
    handlers.on_student_class_changed(db, move)
    assert place(db) == (NEW, "02")
    assert handlers.enrolled_student(db, caller("deputy_secretary", "college", "02"), NUMBER)["class_code"] == NEW
    with pytest.raises(Forbidden):
        handlers.enrolled_student(db, caller("counselor", "classes", OLD), NUMBER)

    handlers.on_student_class_changed(db, class_changed(NUMBER, 2, "2023020102", old_class=NEW))
    inboxed = inbox(db)
    handlers.on_student_class_changed(db, move)  # redelivered: must not undo the later move
    assert place(db) == ("2023020102", "02")
    assert inbox(db) == inboxed


def test_an_early_move_waits_for_the_registration(db: Database) -> None:
    move = class_changed(NUMBER, 1, NEW)
    with pytest.raises(NotFound):
        handlers.on_student_class_changed(db, move)
    handlers.on_student_registered(db, registered(NUMBER, klass=OLD))
    handlers.on_student_class_changed(db, move)  # the retry: the failed delivery was not recorded
    assert place(db) == (NEW, "02")
