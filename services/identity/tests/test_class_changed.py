"""调班 (R9) as identity applies it: the read copy follows, so password resets follow the class."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from services.common.db import Database
from services.common.errors import Forbidden, NotFound
from services.common.models import InboxRecord
from services.common.testing import class_changed, registered
from services.identity import handlers
from services.identity.adapters.orm import Student
from services.identity.tests.factories import caller

NUMBER = "202301010105"
OLD, NEW = "2023010101", "2023020101"
OLD_COUNSELOR = caller("1000004", "counselor", "classes", OLD)
NEW_COUNSELOR = caller("1000005", "counselor", "classes", NEW)


@pytest.fixture
def db(migrated_db: Any) -> Database:
    return migrated_db("identity")


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
    handlers.check_may_reset(db, OLD_COUNSELOR, NUMBER)
    move = class_changed(NUMBER, 1, NEW)
    handlers.on_student_class_changed(db, move)
    assert place(db) == (NEW, "02")
    handlers.check_may_reset(db, NEW_COUNSELOR, NUMBER)
    with pytest.raises(Forbidden):
        handlers.check_may_reset(db, OLD_COUNSELOR, NUMBER)

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
    assert inbox(db) == 0  # not marked delivered: the retry applies it
    handlers.on_student_registered(db, registration)
    handlers.on_student_class_changed(db, move)
    assert place(db) == (NEW, "02")
