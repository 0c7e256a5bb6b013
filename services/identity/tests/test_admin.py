"""Resets (I4), password history and expiry (I3), disabling (I2), own sessions and login
history, initial passwords — against real SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from services.common.caller import Caller
from services.common.db import Database
from services.common.errors import Forbidden, Invalid, NotFound, Unauthenticated
from services.common.models import AuditEntry
from services.identity import admin, handlers
from services.identity.adapters.orm import Account
from services.identity.tests.factories import PASSWORD, caller, registered, staff

REGISTRAR = caller("1000001", "student_affairs")
DEPUTY = caller("1000002", "deputy_secretary", "college", "01")
COUNSELOR = caller("1000004", "counselor", "classes", "2023010101")
HOUSING = caller("1000007", "housing_centre")
STUDENT = "202301010105"
OTHER_CLASS = "202301010201"
OTHER_COLLEGE = "202302010101"


@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("identity")
    staff(database, "1000001", name="学生处管理员")
    staff(database, "1000002", "deputy_secretary", "college", ("01",), name="副书记")
    staff(database, "1000004", "counselor", "classes", ("2023010101",), name="王老师")
    staff(database, "1000007", "housing_centre", name="宿管")
    handlers.on_student_registered(database, registered(STUDENT, name="李娜"))
    handlers.on_student_registered(database, registered(OTHER_CLASS, name="赵磊", klass="2023010102"))
    handlers.on_student_registered(database, registered(OTHER_COLLEGE, name="孙悦", klass="2023020101"))
    return database


def login(db: Database, username: str, password: str = PASSWORD) -> dict[str, Any]:
    return handlers.login(db, username, password, "10.0.0.8")


def me(answer: dict[str, Any]) -> Caller:
    return Caller.from_dict(answer["caller"])


# --- resets (I4) --------------------------------------------------------------------

@pytest.mark.parametrize(("who", "target", "allowed"), [
    (COUNSELOR, STUDENT, True), (COUNSELOR, OTHER_CLASS, False), (COUNSELOR, "1000007", False),
    (DEPUTY, OTHER_CLASS, True), (DEPUTY, OTHER_COLLEGE, False),
    (REGISTRAR, "1000004", True), (REGISTRAR, STUDENT, False),  # students: their counselor's job
    (HOUSING, STUDENT, False), (HOUSING, "1000004", False),
    (caller(STUDENT, "student", "self", STUDENT), STUDENT, False),  # own: change, not reset
])
def test_who_may_reset(db: Database, who: Caller, target: str, allowed: bool) -> None:
    if allowed:
        assert admin.reset_password(db, who, target)["must_change_password"] is True
    else:
        with pytest.raises(Forbidden):
            admin.reset_password(db, who, target)


def test_a_reset_gives_a_one_time_password_that_must_be_changed(db: Database) -> None:
    open_session = me(login(db, "1000004"))
    result = admin.reset_password(db, REGISTRAR, "1000004")
    temporary = result["temporary_password"]
    with pytest.raises(Unauthenticated):  # the reset ended the open session
        handlers.resolve_session(db, open_session.session_id)
    with pytest.raises(Unauthenticated):
        login(db, "1000004")  # the old password no longer works
    answer = login(db, "1000004", temporary)
    assert answer["must_change_password"] is True
    assert handlers.resolve_session(db, answer["session_id"])["must_change_password"] is True
    handlers.change_password(db, me(answer), temporary, "Fresh-2027-pass")
    assert login(db, "1000004", "Fresh-2027-pass")["must_change_password"] is False
    with db.reading() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "account.reset_password")).one()
    assert temporary not in (entry.after or "") and "$argon2" not in (entry.after or "")


def test_unknown_accounts_are_not_found_only_for_administrators(db: Database) -> None:
    with pytest.raises(NotFound):
        admin.reset_password(db, REGISTRAR, "1000099")
    with pytest.raises(Forbidden):
        admin.reset_password(db, COUNSELOR, "202301019999")


# --- history and expiry (I3) ----------------------------------------------------------

def test_none_of_the_last_five_passwords_may_be_reused(db: Database) -> None:
    used = [PASSWORD] + [f"Round-{i}-pass-x" for i in range(1, 6)]
    for old, new in zip(used, used[1:], strict=False):
        handlers.change_password(db, me(login(db, "1000007", old)), old, new)
    current = used[-1]
    for recent in used[-5:-1]:  # the four before the current one, and the current one below
        with pytest.raises(Invalid, match="最近5次"):
            handlers.change_password(db, me(login(db, "1000007", current)), current, recent)
    # the sixth most recent (the first) is allowed again
    handlers.change_password(db, me(login(db, "1000007", current)), current, used[0])


def test_an_expired_password_forces_a_change(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    with db.transaction() as s:
        s.execute(update(Account).where(Account.username == "1000007")
                  .values(password_changed_at=handlers._now() - timedelta(days=181)))
    answer = login(db, "1000007")
    assert (answer["must_change_password"], answer["password_expired"]) == (True, True)
    monkeypatch.setenv("IDENTITY_PASSWORD_MAX_AGE_DAYS", "0")  # 0 disables expiry
    assert login(db, "1000007")["must_change_password"] is False
    monkeypatch.delenv("IDENTITY_PASSWORD_MAX_AGE_DAYS")
    answer = login(db, "1000007")
    handlers.change_password(db, me(answer), PASSWORD, "Renewed-2027-pw")
    assert login(db, "1000007", "Renewed-2027-pw")["must_change_password"] is False


def test_common_passwords_are_refused_on_change(db: Database) -> None:
    with pytest.raises(Invalid, match="过于常见"):
        handlers.change_password(db, me(login(db, "1000007")), PASSWORD, "Password2027!")


# --- disable / enable / unlock (I2) ---------------------------------------------------

def test_disabling_ends_sessions_at_once_and_enabling_restores_login(db: Database) -> None:
    session = me(login(db, "1000004"))
    with pytest.raises(Forbidden):
        admin.disable_account(db, COUNSELOR, "1000007", "离职")
    with pytest.raises(Invalid, match="原因"):
        admin.disable_account(db, REGISTRAR, "1000004", " ")
    assert admin.disable_account(db, REGISTRAR, "1000004", "离职")["active"] is False
    with pytest.raises(Unauthenticated):
        handlers.resolve_session(db, session.session_id)
    with pytest.raises(Unauthenticated, match="账号已停用"):
        login(db, "1000004")
    admin.enable_account(db, REGISTRAR, "1000004")
    assert login(db, "1000004")["session_id"]
    with db.reading() as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.target == "1000004")).all()
    assert "account.disable" in actions and "account.enable" in actions


def test_unlock_ends_a_lockout(db: Database) -> None:
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            login(db, "1000007", "Wrong-pass-2027")
    with pytest.raises(Unauthenticated, match="锁定"):
        login(db, "1000007")
    assert admin.search_accounts(db, REGISTRAR, "1000007")["items"][0]["locked"] is True
    admin.unlock_account(db, REGISTRAR, "1000007")
    assert login(db, "1000007")["session_id"]


# --- search, own sessions, login history ---------------------------------------------

def test_search_is_scoped(db: Database) -> None:
    assert admin.search_accounts(db, REGISTRAR)["total"] == 7
    mine = admin.search_accounts(db, COUNSELOR)
    assert [i["username"] for i in mine["items"]] == [STUDENT]
    # a deputy secretary: the college's students, and the counselors of its classes (to grant to)
    assert {i["username"] for i in admin.search_accounts(db, DEPUTY)["items"]} == {STUDENT, OTHER_CLASS, "1000004"}
    assert admin.search_accounts(db, REGISTRAR, "王老")["items"][0]["username"] == "1000004"
    with pytest.raises(Forbidden):
        admin.search_accounts(db, HOUSING)


def test_own_sessions_and_login_history(db: Database) -> None:
    first = me(login(db, "1000007"))
    with pytest.raises(Unauthenticated):
        login(db, "1000007", "Wrong-pass-2027")
    second = me(login(db, "1000007"))
    sessions = admin.my_sessions(db, second)["items"]
    assert len(sessions) == 2 and [s["current"] for s in sessions].count(True) == 1
    other = next(s for s in sessions if not s["current"])
    assert first.session_id not in json.dumps(sessions)  # only digests leave the service
    admin.end_my_session(db, second, other["ref"])
    with pytest.raises(Unauthenticated):
        handlers.resolve_session(db, first.session_id)
    with pytest.raises(NotFound):
        admin.end_my_session(db, caller("1000004", "counselor", "classes", "2023010101"), other["ref"])
    results = [i["result"] for i in admin.my_logins(db, second)["items"]]
    assert results == ["ok", "bad_credentials", "ok"]
    assert admin.force_logout(db, REGISTRAR, "1000007") == {"ended": 1}
    assert admin.login_log(db, REGISTRAR, "1000007")["total"] == 3
    with pytest.raises(Forbidden):
        admin.login_log(db, HOUSING)


def test_initial_passwords_for_the_counselors_students(db: Database) -> None:
    issued = admin.issue_initial_passwords(db, COUNSELOR)
    assert [(i["student_number"], i["name"]) for i in issued["items"]] == [(STUDENT, "李娜")]
    answer = login(db, STUDENT, issued["items"][0]["initial_password"])
    assert answer["must_change_password"] is True
    assert admin.issue_initial_passwords(db, COUNSELOR)["count"] == 0  # only once
    with pytest.raises(Forbidden):
        admin.issue_initial_passwords(db, COUNSELOR, "2023020101")
    with pytest.raises(Forbidden):
        admin.issue_initial_passwords(db, HOUSING)
    assert admin.issue_initial_passwords(db, DEPUTY, "2023010102")["count"] == 1


def test_the_student_affairs_office_corrects_a_staff_name_and_students_names_follow_roster(db: Database) -> None:
    view = admin.edit_account(db, REGISTRAR, "1000004", "  王老师（辅导员）  ")
    assert view["display_name"] == "王老师（辅导员）"
    assert handlers.get_account(db, REGISTRAR, "1000004")["display_name"] == "王老师（辅导员）"
    with db.reading() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "account.edit")).one()
        assert '"display_name": "王老师"' in (entry.before or "") and "辅导员" in (entry.after or "")
    with pytest.raises(Invalid, match="学籍"):
        admin.edit_account(db, REGISTRAR, STUDENT, "李娜娜")
    with pytest.raises(Invalid, match="姓名不能为空"):
        admin.edit_account(db, REGISTRAR, "1000004", "  ")
    with pytest.raises(Invalid, match="不能超过"):
        admin.edit_account(db, REGISTRAR, "1000004", "名" * 65)
    with pytest.raises(Forbidden):
        admin.edit_account(db, COUNSELOR, "1000004", "自己改")
    with pytest.raises(NotFound):
        admin.edit_account(db, REGISTRAR, "1999999", "无此人")
