"""调班 (R9) as transfer applies it to its read copy, exactly once, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from services.common.db import Database
from services.common.errors import Forbidden, NotFound
from services.common.models import InboxRecord
from services.common.testing import caller, class_changed, registered
from services.transfer import handlers
from services.transfer.adapters.orm import Student

NUMBER = "202301010105"
OLD, NEW = "2023010101", "2023020101"


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("transfer")


def place(db: Database) -> tuple[str, str]:
    with db.reading() as s:
        row = s.get(Student, NUMBER)
        assert row is not None
        return row.class_code, row.college_code


def inbox(db: Database) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(InboxRecord)) or 0


def test_a_class_move_applies_once(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER, klass=OLD))
    move = class_changed(NUMBER, 1, NEW)
    handlers.on_student_class_changed(db, move)
    assert place(db) == (NEW, "02")
    assert handlers.student_for_matching(db, caller("student_affairs"), NUMBER)["class_code"] == NEW

    with db.transaction() as s:  # a later correction the duplicate must not undo
        row = s.get(Student, NUMBER)
        assert row is not None
        row.class_code = "2023020102"
    inboxed = inbox(db)
    handlers.on_student_class_changed(db, move)
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
    with pytest.raises(Forbidden):  # a scope of the old college no longer covers the student
        handlers.student_for_matching(db, caller("academic_affairs", "college", "01"), NUMBER)
