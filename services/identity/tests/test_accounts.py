"""Creating and viewing accounts against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from services.common.caller import Caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.models import AuditEntry
from services.identity import handlers
from services.identity.adapters.orm import Account
from services.identity.tests.factories import PASSWORD, SYSTEM, caller, registered, staff, status_changed

REGISTRAR = caller("1000001", "student_affairs")
COUNSELOR = caller("1000004", "counselor", "classes", "2023010101")
DEPUTY = caller("1000002", "deputy_secretary", "college", "01")
HOUSING = caller("1000007", "housing_centre")
ME = caller("202301010105", "student", "self", "202301010105")


@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("identity")
    staff(database, "1000001", name="学生处管理员")
    staff(database, "1000004", "counselor", "classes", ("2023010101",), name="王老师")
    staff(database, "1000007", "housing_centre", name="宿管")
    handlers.on_student_registered(database, registered("202301010105", name="李娜"))
    handlers.on_student_registered(database, registered("202301010106", name="赵磊"))
    handlers.on_student_registered(database, registered("202302010101", name="孙悦", klass="2023020101"))
    return database


def audit_entries(db: Database, action: str) -> list[AuditEntry]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


# --- creating -----------------------------------------------------------------------

def test_student_affairs_creates_a_staff_account(db: Database) -> None:
    view = handlers.create_account(db, REGISTRAR, "1000010", "陈老师", "counselor", "classes",
                                   ["2023010101", "2023010102"], PASSWORD)
    assert view == {"username": "1000010", "display_name": "陈老师", "role": "counselor", "role_label": "辅导员",
                    "active": True, "must_change_password": True,
                    "scope": {"kind": "classes", "ids": ["2023010101", "2023010102"]}}
    entry = audit_entries(db, "account.create")[-1]
    assert (entry.actor, entry.role, entry.target) == ("1000001", "student_affairs", "1000010")
    after = json.loads(entry.after or "{}")
    assert after["grants"][0]["scope"]["ids"] == ["2023010101", "2023010102"]
    assert "password_hash" not in after and "$argon2" not in (entry.after or "")


def test_accounts_made_by_the_system_need_no_change(db: Database) -> None:
    view = handlers.create_account(db, SYSTEM, "1000011", "教务处", "academic_affairs", "institution", [], PASSWORD)
    assert view["must_change_password"] is False


@pytest.mark.parametrize("who", [COUNSELOR, DEPUTY, HOUSING, ME])
def test_only_student_affairs_and_the_system_create_accounts(db: Database, who: Caller) -> None:
    with pytest.raises(Forbidden):
        handlers.create_account(db, who, "1000010", "陈老师", "counselor", "classes", ["2023010101"], PASSWORD)
    with db.reading() as s:
        assert s.get(Account, "1000010") is None


@pytest.mark.parametrize(("args", "message"), [
    (("100010", "陈老师", "counselor", "classes", ["2023010101"], PASSWORD), "7位工号"),
    (("1000010", "陈老师", "counselor", "classes", ["2023010101"], "short"), "密码长度不能少于10位"),
    (("1000010", "陈老师", "counselor", "classes", ["2023010101"], "alllowercase"), "至少3类"),
    (("1000010", "陈老师", "counselor", "institution", [], PASSWORD), "数据范围应为 classes"),
    (("1000010", "陈老师", "system", "institution", [], PASSWORD), "未知角色"),
    (("1000010", "陈老师", "counselor", "classes", "2023010101", PASSWORD), "代码列表"),
    ((1000010, "陈老师", "counselor", "classes", ["2023010101"], PASSWORD), "必须填写"),
    (("1000010", "陈老师", "counselor", "classes", ["2023010101"], None), "请输入密码"),
])
def test_invalid_accounts_are_refused_with_reasons(db: Database, args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(Invalid, match=message):
        handlers.create_account(db, REGISTRAR, *args)


def test_an_existing_username_is_a_conflict(db: Database) -> None:
    with pytest.raises(Conflict):
        handlers.create_account(db, REGISTRAR, "1000004", "王老师", "counselor", "classes", ["2023010101"],
                                PASSWORD)
    assert len(audit_entries(db, "account.create")) == 6  # 3 staff + 3 students, nothing more


def test_count_accounts(db: Database) -> None:
    assert handlers.count_accounts(db, REGISTRAR) == {"count": 6}
    handlers.on_student_status_changed(db, status_changed("202301010106", 3))
    assert handlers.count_accounts(db, SYSTEM, active=False) == {"count": 1}
    assert handlers.count_accounts(db, SYSTEM, active=True) == {"count": 5}
    with pytest.raises(Forbidden):
        handlers.count_accounts(db, COUNSELOR)


def test_health_counts_accounts(db: Database) -> None:
    assert handlers.health(db) == {"service": "identity", "status": "ok", "db": "ok", "outbox_backlog": 0,
                                   "accounts": 6}


# --- viewing (I6) -----------------------------------------------------------------

ALLOWED = [
    (ME, "202301010105"),           # a student sees their own account
    (COUNSELOR, "202301010105"),    # a counselor sees students of their classes
    (COUNSELOR, "202301010106"),
    (COUNSELOR, "1000004"),         # and their own account
    (DEPUTY, "202301010106"),       # a deputy secretary sees their college's students
    (REGISTRAR, "202302010101"),    # student affairs sees everyone
    (REGISTRAR, "1000004"),
    (SYSTEM, "1000007"),
    (HOUSING, "1000007"),
]
REFUSED = [
    (ME, "202301010106"),           # another student
    (ME, "1000004"),
    (COUNSELOR, "202302010101"),    # a student outside their classes
    (COUNSELOR, "1000007"),         # a colleague
    (DEPUTY, "202302010101"),       # another college
    (HOUSING, "202301010105"),      # institution-wide, but not an account keeper
]


@pytest.mark.parametrize(("who", "username"), ALLOWED)
def test_who_may_view_an_account(db: Database, who: Caller, username: str) -> None:
    view = handlers.get_account(db, who, username)
    assert view["username"] == username
    assert set(view) == {"username", "display_name", "role", "role_label", "active", "must_change_password",
                         "scope"}


@pytest.mark.parametrize(("who", "username"), REFUSED)
def test_who_may_not(db: Database, who: Caller, username: str) -> None:
    with pytest.raises(Forbidden, match="无权查看该账号"):
        handlers.get_account(db, who, username)


def test_a_student_account_view(db: Database) -> None:
    assert handlers.get_account(db, ME, "202301010105") == {
        "username": "202301010105", "display_name": "李娜", "role": "student", "role_label": "学生",
        "active": True, "must_change_password": True, "scope": {"kind": "self", "ids": ["202301010105"]}}


def test_missing_accounts_are_not_found_only_for_account_keepers(db: Database) -> None:
    with pytest.raises(NotFound, match="账号不存在"):
        handlers.get_account(db, REGISTRAR, "1000099")
    with pytest.raises(Forbidden):  # others cannot probe which numbers exist
        handlers.get_account(db, COUNSELOR, "202301010199")
