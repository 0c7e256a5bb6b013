"""Transfer use cases against a real, migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from services.common.caller import system_caller
from services.common.db import Database
from services.common.errors import Forbidden, Invalid, NotFound
from services.common.models import InboxRecord
from services.transfer import handlers
from services.transfer.adapters.orm import Student
from services.transfer.tests.factories import caller, registered, status_changed

NUMBER = "202301010105"


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("transfer")


def row(db: Database, number: str = NUMBER) -> Student:
    with db.reading() as s:
        found = s.get(Student, number)
        assert found is not None
        return found


def inbox_count(db: Database) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(InboxRecord)) or 0


def test_registered_student_enters_the_read_copy(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER, name="李娜"))
    student = row(db)
    assert (student.name, student.gender, student.college_code, student.class_code) == \
        ("李娜", "2", "01", "2023010101")
    assert (student.status, student.left, student.last_change_id) == ("enrolled", False, None)
    assert handlers.health(db)["students_known"] == 1


def test_a_duplicate_delivery_has_no_effect(db: Database) -> None:
    event = registered(NUMBER, name="李娜")
    handlers.on_student_registered(db, event)
    with db.transaction() as s:  # a later correction the duplicate must not undo
        student = s.get(Student, NUMBER)
        assert student is not None
        student.name = "李娜娜"
    handlers.on_student_registered(db, event)
    assert row(db).name == "李娜娜"
    assert inbox_count(db) == 1


def test_a_duplicate_status_change_applies_once(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    change = status_changed(NUMBER, 7, "transferred_out", left=True)
    handlers.on_student_status_changed(db, change)
    with db.transaction() as s:  # roster revoked it meanwhile (change 8)
        student = s.get(Student, NUMBER)
        assert student is not None
        student.status, student.left, student.last_change_id = "enrolled", False, 8
    handlers.on_student_status_changed(db, change)
    assert (row(db).status, row(db).last_change_id) == ("enrolled", 8)
    assert inbox_count(db) == 2


def test_a_status_change_updates_the_read_copy(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 7, "graduated", left=True))
    student = row(db)
    assert (student.status, student.left, student.last_change_id) == ("graduated", True, 7)
    handlers.on_student_status_changed(
        db, status_changed(NUMBER, 8, "enrolled", left=False, old_status="graduated", revokes=7))
    student = row(db)
    assert (student.status, student.left, student.last_change_id) == ("enrolled", False, 8)


def test_an_older_change_arriving_late_is_ignored(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 9, "withdrawn", left=True))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 4, "suspended", left=False))
    assert (row(db).status, row(db).left) == ("withdrawn", True)


def test_a_late_registered_event_does_not_undo_a_status_change(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 7, "graduated", left=True))
    handlers.on_student_registered(db, registered(NUMBER, status="enrolled", klass="2023010102"))
    student = row(db)
    assert (student.status, student.left, student.class_code) == ("graduated", True, "2023010102")


def test_a_change_for_an_unknown_student_fails_and_leaves_no_trace(db: Database) -> None:
    event = status_changed(NUMBER, 7, "graduated", left=True)
    with pytest.raises(NotFound):
        handlers.on_student_status_changed(db, event)
    assert inbox_count(db) == 0  # rolled back: a retry after registration applies it
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, event)
    assert row(db).left


@pytest.fixture
def known(db: Database) -> Database:
    handlers.on_student_registered(db, registered(NUMBER))
    return db


@pytest.mark.parametrize("role", ["student_affairs", "academic_affairs", "authority"])
def test_transfer_offices_read_the_record(known: Database, role: str) -> None:
    kind = "area" if role == "authority" else "institution"
    view = handlers.student_for_matching(known, caller(role, kind, "420100"), NUMBER)
    assert (view["student_number"], view["name"], view["may_transfer_out"]) == (NUMBER, "李娜", True)


def test_the_system_reads_the_record(known: Database) -> None:
    assert handlers.student_for_matching(known, system_caller("transfer"), NUMBER)["left"] is False


@pytest.mark.parametrize("role", ["student", "counselor", "deputy_secretary", "it_centre",
                                  "housing_centre", "aid_operator", "aid_auditor"])
def test_other_roles_may_not(known: Database, role: str) -> None:
    with pytest.raises(Forbidden, match="无权执行此操作"):
        handlers.student_for_matching(known, caller(role), NUMBER)


def test_an_office_account_with_a_narrow_scope_sees_only_it(known: Database) -> None:
    narrow = caller("academic_affairs", "college", "02")
    with pytest.raises(Forbidden, match="不在您的数据权限范围内"):
        handlers.student_for_matching(known, narrow, NUMBER)


def test_a_student_who_left_may_not_transfer_out(known: Database) -> None:
    handlers.on_student_status_changed(known, status_changed(NUMBER, 3, "graduated", left=True))
    view = handlers.student_for_matching(known, caller("student_affairs"), NUMBER)
    assert (view["status"], view["left"], view["may_transfer_out"], view["last_change_id"]) == \
        ("graduated", True, False, 3)


def test_unknown_and_malformed_numbers(known: Database) -> None:
    with pytest.raises(NotFound, match="不存在"):
        handlers.student_for_matching(known, caller("student_affairs"), "202309090909")
    with pytest.raises(Invalid, match="学号格式不正确"):
        handlers.student_for_matching(known, caller("student_affairs"), "12-34")


def test_health_counts_known_students_and_the_outbox(known: Database) -> None:
    assert handlers.health(known) == {"service": "transfer", "status": "ok", "db": "ok",
                                      "outbox_backlog": 0, "students_known": 1}
