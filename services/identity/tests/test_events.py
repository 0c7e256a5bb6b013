"""Roster's events as identity applies them (I5), exactly once, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from services.common.db import Database
from services.common.errors import NotFound, Unauthenticated
from services.common.models import AuditEntry, InboxRecord
from services.identity import handlers
from services.identity.adapters.orm import Account, Student
from services.identity.tests.factories import PASSWORD, SYSTEM, registered, status_changed

NUMBER = "202301010105"


@pytest.fixture
def db(migrated_db: Any) -> Database:
    return migrated_db("identity")


def account(db: Database, username: str = NUMBER) -> Account | None:
    with db.reading() as s:
        return s.get(Account, username)


def actions(db: Database, target: str = NUMBER) -> list[str]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEntry.action).where(AuditEntry.target == target).order_by(AuditEntry.id)))


def count(db: Database, model: Any) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def student_session(db: Database) -> str:
    handlers.set_password(db, SYSTEM, NUMBER, PASSWORD)
    return str(handlers.login(db, NUMBER, PASSWORD)["session_id"])


def test_registration_creates_the_student_account_once(db: Database) -> None:
    event = registered(NUMBER, name="李娜", klass="2023010102")
    handlers.on_student_registered(db, event)
    handlers.on_student_registered(db, event)  # redelivered
    row = account(db)
    assert row is not None
    assert (row.display_name, row.role) == ("李娜", "student")
    assert (row.active, row.password_hash, row.must_change_password) == (True, None, True)
    with db.reading() as s:
        student = s.get(Student, NUMBER)
        assert student is not None
        assert (student.name, student.college_code, student.class_code, student.left) == (
            "李娜", "01", "2023010102", False)
    assert count(db, Account) == 1
    assert count(db, InboxRecord) == 1
    assert actions(db) == ["account.create"]


def test_a_second_registration_event_keeps_the_account(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER, klass="2023010101"))
    handlers.set_password(db, SYSTEM, NUMBER, PASSWORD)
    handlers.on_student_registered(db, registered(NUMBER, klass="2023010102"))  # another event id
    row = account(db)
    assert row is not None and row.password_hash is not None
    with db.reading() as s:
        assert s.get(Student, NUMBER).class_code == "2023010102"  # type: ignore[union-attr]
    assert actions(db).count("account.create") == 1


def test_a_student_registered_as_already_left_gets_an_inactive_account(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER, status="graduated", left=True))
    row = account(db)
    assert row is not None and row.active is False
    assert row.deactivated_reason == "注册时已离校"


def test_leaving_deactivates_once_and_ends_the_sessions(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    session_id = student_session(db)
    graduation = status_changed(NUMBER, 7, "graduated", left=True)
    handlers.on_student_status_changed(db, graduation)
    handlers.on_student_status_changed(db, graduation)  # redelivered
    row = account(db)
    assert row is not None
    assert (row.active, row.deactivated_by_event) == (False, 7)
    assert row.deactivated_reason == "学籍异动（graduated）：离校系统通知"
    with pytest.raises(Unauthenticated):
        handlers.resolve_session(db, session_id)
    assert actions(db).count("account.deactivate") == 1
    with db.reading() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "account.deactivate")).one()
    assert (entry.actor, entry.correlation_id) == ("system:identity", "corr-7")
    assert json.loads(entry.after or "{}")["sessions_ended"] == 1
    with pytest.raises(Unauthenticated, match="账号已停用"):
        handlers.login(db, NUMBER, PASSWORD)


def test_revoking_the_change_reactivates(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 7, "graduated", left=True))
    revocation = status_changed(NUMBER, 8, "enrolled", left=False, old_status="graduated", revokes=7)
    handlers.on_student_status_changed(db, revocation)
    handlers.on_student_status_changed(db, revocation)
    row = account(db)
    assert row is not None
    assert (row.active, row.deactivated_by_event, row.deactivated_reason) == (True, None, None)
    assert actions(db) == ["account.create", "account.deactivate", "account.reactivate"]


def test_revoking_another_change_does_not_reactivate(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 7, "graduated", left=True))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 9, "enrolled", left=False, revokes=5))
    row = account(db)
    assert row is not None and row.active is False


def test_a_change_arriving_after_its_revocation_is_outdated(db: Database) -> None:
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 8, "enrolled", left=False, revokes=7))
    handlers.on_student_status_changed(db, status_changed(NUMBER, 7, "graduated", left=True))
    row = account(db)
    assert row is not None and row.active is True
    with db.reading() as s:
        assert s.get(Student, NUMBER).last_change_id == 8  # type: ignore[union-attr]


def test_a_change_before_the_registration_fails_and_leaves_no_trace(db: Database) -> None:
    early = status_changed(NUMBER, 7, "graduated", left=True)
    with pytest.raises(NotFound):
        handlers.on_student_status_changed(db, early)
    assert count(db, InboxRecord) == 0  # so the retry is not taken for a duplicate
    handlers.on_student_registered(db, registered(NUMBER))
    handlers.on_student_status_changed(db, early)
    row = account(db)
    assert row is not None and row.active is False


def test_a_staff_account_with_the_same_number_is_left_alone(db: Database) -> None:
    handlers.create_account(db, SYSTEM, "2023011", "周老师", "counselor", "classes", ["2023010101"], PASSWORD)
    handlers.on_student_registered(db, registered("2023011"))
    handlers.on_student_status_changed(db, status_changed("2023011", 4, "graduated", left=True))
    row = account(db, "2023011")
    assert row is not None and (row.role, row.active) == ("counselor", True)
