"""A student account follows its student number (I5), against real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from services.common.db import Database
from services.common.envelope import Envelope, new_event
from services.common.errors import InvalidEvent, NotFound, Unauthenticated
from services.common.events import StudentMerged, StudentNumberChanged
from services.common.models import AuditEntry
from services.common.testing import ROSTER, class_changed, status_changed
from services.identity import admin, handlers, renames
from services.identity.adapters.orm import Account, AccountRename, LoginSession, Student
from services.identity.tests.factories import PASSWORD, SYSTEM, caller, registered, staff

OLD, NEW = "202301010105", "202301010199"


def number_changed(old: str = OLD, new: str = NEW) -> Envelope:
    return new_event("student.number_changed",
                     StudentNumberChanged(old_number=old, new_number=new, national_id="110101200501011234",
                                          changed_at=datetime(2027, 9, 1, tzinfo=UTC)),
                     source="roster", actor=ROSTER)


@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("identity")
    handlers.on_student_registered(database, registered(OLD, name="李娜"))
    handlers.set_password(database, SYSTEM, OLD, PASSWORD)
    return database


def test_the_account_is_renamed_with_history_once(db: Database) -> None:
    session = handlers.login(db, OLD, PASSWORD)["session_id"]
    event = number_changed()
    renames.on_student_number_changed(db, event)
    renames.on_student_number_changed(db, event)  # redelivered: nothing more happens
    with pytest.raises(Unauthenticated):
        handlers.resolve_session(db, session)
    with pytest.raises(Unauthenticated):
        handlers.login(db, OLD, PASSWORD)
    who = handlers.login(db, NEW, PASSWORD)["caller"]
    assert (who["username"], who["scope"]["ids"]) == (NEW, [NEW])
    with db.reading() as s:
        assert s.get(Account, OLD) is None and s.get(Student, OLD) is None
        assert s.get(Student, NEW) is not None
        assert s.scalar(select(func.count()).select_from(AccountRename)) == 1
        assert s.scalar(select(func.count()).select_from(LoginSession).where(LoginSession.username == NEW)) == 2
    # the login history made under the old number stays the student's
    me = caller(NEW, "student", "self", NEW)
    assert [i["username"] for i in admin.my_logins(db, me)["items"]] == [NEW, OLD, OLD]


def test_a_rename_before_the_registration_is_retried(db: Database) -> None:
    with pytest.raises(NotFound):
        renames.on_student_number_changed(db, number_changed("202301010107", "202301010108"))


def test_renaming_onto_an_existing_account_is_refused(db: Database) -> None:
    staff(db, "1000001", name="学生处")
    handlers.on_student_registered(db, registered(NEW, name="赵磊"))
    with pytest.raises(InvalidEvent):
        renames.on_student_number_changed(db, number_changed())
    with pytest.raises(InvalidEvent):
        renames.on_student_number_changed(db, number_changed("1000001", "202301010177"))


def merged(removed: str, kept: str) -> Envelope:
    return new_event("student.merged", StudentMerged(removed_number=removed, kept_number=kept,
                                                     merged_at=datetime(2027, 9, 1, tzinfo=UTC)),
                     source="roster", actor=ROSTER)


def test_a_merged_duplicate_is_retired_not_deleted(db: Database) -> None:
    handlers.on_student_registered(db, registered(NEW, name="李娜"))
    session = handlers.login(db, OLD, PASSWORD)["session_id"]
    event = merged(OLD, NEW)
    renames.on_student_merged(db, event)
    renames.on_student_merged(db, event)  # redelivered
    with pytest.raises(Unauthenticated):
        handlers.resolve_session(db, session)
    with pytest.raises(Unauthenticated, match="账号已停用"):
        handlers.login(db, OLD, PASSWORD)
    with db.reading() as s:
        old, kept = s.get(Account, OLD), s.get(Account, NEW)
        assert old is not None and not old.active and "合并到学号 202301010199" in (old.deactivated_reason or "")
        assert kept is not None and kept.active
    with pytest.raises(NotFound):
        renames.on_student_merged(db, merged("202301010177", NEW))


def test_a_corrected_name_reaches_the_account(db: Database) -> None:
    handlers.on_student_registered(db, registered(OLD, name="李 娜"))
    with db.reading() as s:
        row = s.get(Account, OLD)
        assert row is not None and row.display_name == "李 娜" and row.password_hash is not None


# --- events for the former number, overtaken by the rename (each type has its own queue) ---------

def test_a_late_leaving_change_for_the_former_number_deactivates_the_renamed_account_once(db: Database) -> None:
    renames.on_student_number_changed(db, number_changed())
    late = status_changed(OLD, 7, "withdrawn")
    handlers.on_student_status_changed(db, late)
    handlers.on_student_status_changed(db, late)  # redelivered: nothing more happens
    with pytest.raises(Unauthenticated, match="账号已停用"):
        handlers.login(db, NEW, PASSWORD)
    with db.reading() as s:
        account = s.get(Account, NEW)
        assert account is not None and not account.active and account.deactivated_by_event == 7
        assert s.get(Student, NEW).last_change_id == 7 and s.get(Account, OLD) is None
        assert s.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.action == "account.deactivate", AuditEntry.target == NEW)) == 1
    # an older change for the former number, later still, does not undo it
    handlers.on_student_status_changed(db, status_changed(OLD, 6, "enrolled", left=False))
    with db.reading() as s:
        assert not s.get(Account, NEW).active


def test_a_late_registration_for_the_former_number_makes_no_second_account(db: Database) -> None:
    renames.on_student_number_changed(db, number_changed())
    handlers.on_student_registered(db, registered(OLD, name="李 娜"))
    handlers.on_student_class_changed(db, class_changed(OLD, 3, "2023010102", old_class="2023010101"))
    with db.reading() as s:
        assert s.get(Account, OLD) is None and s.get(Student, OLD) is None
        assert s.get(Account, NEW).display_name == "李 娜" and s.get(Account, NEW).password_hash is not None
        assert s.get(Student, NEW).class_code == "2023010102"


def test_a_late_merge_naming_the_former_number_retires_the_renamed_account(db: Database) -> None:
    handlers.on_student_registered(db, registered("202301010177", name="李娜"))
    renames.on_student_number_changed(db, number_changed())
    renames.on_student_merged(db, merged(OLD, "202301010177"))
    with db.reading() as s:
        assert not s.get(Account, NEW).active and s.get(Account, OLD) is None
