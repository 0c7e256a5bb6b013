"""Logging in, sessions and password changes against real SQLite and PostgreSQL databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from services.common.caller import Caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from services.identity import admin, handlers
from services.identity.adapters.orm import Account, LoginAttempt, LoginSession
from services.identity.domain.passwords import HASHER
from services.identity.tests.factories import PASSWORD, SYSTEM, caller, registered, staff

WRONG = "Wrong-pass-2027"
NEW_PASSWORD = "Another-2028-pw"


@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("identity")
    staff(database, "1000001", name="学生处管理员")
    return database


def attempts(db: Database) -> list[tuple[str, str]]:
    with db.reading() as s:
        return [(a.username, a.result) for a in s.scalars(select(LoginAttempt).order_by(LoginAttempt.id))]


def account(db: Database, username: str) -> Account:
    with db.reading() as s:
        row = s.get(Account, username)
        assert row is not None
        return row


def session_row(db: Database, session_id: str) -> LoginSession:
    with db.reading() as s:
        row = s.get(LoginSession, session_id)
        assert row is not None
        return row


def set_account(db: Database, username: str, **values: Any) -> None:
    with db.transaction() as s:
        s.execute(update(Account).where(Account.username == username).values(**values))


def login_error(db: Database, username: str, password: str) -> str:
    with pytest.raises(Unauthenticated) as exc:
        handlers.login(db, username, password, "10.0.0.8")
    return str(exc.value)


# --- logging in ---------------------------------------------------------------------

def test_login_opens_a_session_for_the_account(db: Database) -> None:
    answer = handlers.login(db, "1000001", PASSWORD, "10.0.0.8")
    who = Caller.from_dict(answer["caller"])
    assert (who.user_id, who.username, who.role) == ("1000001", "1000001", "student_affairs")
    assert (who.scope.kind, who.scope.ids) == ("institution", ())
    assert who.session_id == answer["session_id"]
    assert len(answer["session_id"]) == 43
    assert answer["must_change_password"] is False
    row = session_row(db, answer["session_id"])
    assert (row.username, row.remote_addr, row.ended_at) == ("1000001", "10.0.0.8", None)
    assert attempts(db) == [("1000001", "ok")]


def test_wrong_password_and_unknown_user_get_the_same_message(db: Database) -> None:
    wrong = login_error(db, "1000001", WRONG)
    unknown = login_error(db, "1000999", PASSWORD)
    assert wrong == unknown == "用户名或密码错误"
    empty = login_error(db, "", "")
    assert empty == "用户名或密码错误"
    assert attempts(db) == [("1000001", "bad_credentials"), ("1000999", "bad_credentials"),
                            ("", "bad_credentials")]
    with db.reading() as s:
        assert s.scalars(select(LoginSession)).all() == []


def test_five_failures_lock_the_account_for_fifteen_minutes(db: Database) -> None:
    for _ in range(4):
        assert login_error(db, "1000001", WRONG) == "用户名或密码错误"
    assert account(db, "1000001").failed_logins == 4
    # The fifth failure locks at once and says for how long.
    assert login_error(db, "1000001", WRONG) == "账号已锁定，请在15分钟后重试"
    # Now even the right password is refused.
    assert login_error(db, "1000001", PASSWORD) == "账号已锁定，请在15分钟后重试"
    locked_until = account(db, "1000001").locked_until
    assert locked_until is not None
    assert timedelta(minutes=14) < locked_until - datetime.now(UTC) <= timedelta(minutes=15)
    assert attempts(db) == [("1000001", "bad_credentials")] * 5 + [("1000001", "locked")]


def test_the_lock_ends_after_its_time(db: Database) -> None:
    for _ in range(5):
        login_error(db, "1000001", WRONG)
    set_account(db, "1000001", locked_until=datetime.now(UTC) - timedelta(seconds=1))
    assert handlers.login(db, "1000001", PASSWORD)["session_id"]
    row = account(db, "1000001")
    assert (row.failed_logins, row.locked_until) == (0, None)


def test_a_success_starts_the_count_again(db: Database) -> None:
    for _ in range(4):
        login_error(db, "1000001", WRONG)
    handlers.login(db, "1000001", PASSWORD)
    for _ in range(4):
        assert login_error(db, "1000001", WRONG) == "用户名或密码错误"
    assert handlers.login(db, "1000001", PASSWORD)["session_id"]


def test_a_disabled_account_says_so_only_to_the_right_password(db: Database) -> None:
    set_account(db, "1000001", active=False)
    assert login_error(db, "1000001", PASSWORD) == "账号已停用"
    assert login_error(db, "1000001", WRONG) == "用户名或密码错误"
    assert attempts(db) == [("1000001", "disabled"), ("1000001", "bad_credentials")]


def test_a_student_account_from_an_event_has_no_password_yet(db: Database) -> None:
    handlers.on_student_registered(db, registered("202301010105"))
    assert login_error(db, "202301010105", PASSWORD) == "用户名或密码错误"
    assert login_error(db, "202301010105", "") == "用户名或密码错误"


def test_a_student_logs_in_with_scope_self(db: Database) -> None:
    handlers.on_student_registered(db, registered("202301010105"))
    staff(db, "1000004", "counselor", "classes", ("2023010101",))
    reset = admin.reset_password(db, caller("1000004", "counselor", "classes", "2023010101"), "202301010105")
    answer = handlers.login(db, "202301010105", reset["temporary_password"])
    who = Caller.from_dict(answer["caller"])
    assert (who.role, who.scope.kind, who.scope.ids) == ("student", "self", ("202301010105",))
    assert answer["must_change_password"] is True  # set by staff: change it at first login (I3)


def test_weaker_hashes_are_upgraded_at_login(db: Database) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    set_account(db, "1000001", password_hash=weak)
    handlers.login(db, "1000001", PASSWORD)
    upgraded = account(db, "1000001").password_hash
    assert upgraded != weak and upgraded is not None and not HASHER.check_needs_rehash(upgraded)
    assert handlers.login(db, "1000001", PASSWORD)["session_id"]


# --- sessions -----------------------------------------------------------------------

def test_resolve_session_gives_the_caller(db: Database) -> None:
    session_id = handlers.login(db, "1000001", PASSWORD)["session_id"]
    who = handlers.resolve_session(db, session_id)
    assert (who["username"], who["role"], who["session_id"]) == ("1000001", "student_affairs", session_id)
    assert who["scope"] == {"kind": "institution", "ids": []}


@pytest.mark.parametrize("session_id", ["", "no-such-session", "x" * 100, None, 42])
def test_unknown_sessions_are_refused(db: Database, session_id: Any) -> None:
    with pytest.raises(Unauthenticated, match="会话已失效，请重新登录"):
        handlers.resolve_session(db, session_id)


def test_logout_ends_the_session(db: Database) -> None:
    session_id = handlers.login(db, "1000001", PASSWORD)["session_id"]
    other = handlers.login(db, "1000001", PASSWORD)["session_id"]
    assert handlers.logout(db, session_id) is None
    with pytest.raises(Unauthenticated, match="会话已失效"):
        handlers.resolve_session(db, session_id)
    assert handlers.resolve_session(db, other)["username"] == "1000001"  # other browsers stay in
    handlers.logout(db, session_id)  # twice is harmless
    handlers.logout(db, "no-such-session")
    assert session_row(db, session_id).ended_at is not None


def test_last_seen_is_written_at_most_once_a_minute(db: Database) -> None:
    session_id = handlers.login(db, "1000001", PASSWORD)["session_id"]
    created = session_row(db, session_id).last_seen_at
    handlers.resolve_session(db, session_id)
    assert session_row(db, session_id).last_seen_at == created
    two_minutes_ago = datetime.now(UTC) - timedelta(minutes=2)
    with db.transaction() as s:
        s.execute(update(LoginSession).where(LoginSession.id == session_id).values(last_seen_at=two_minutes_ago))
    handlers.resolve_session(db, session_id)
    touched = session_row(db, session_id).last_seen_at
    assert touched > created
    handlers.resolve_session(db, session_id)
    assert session_row(db, session_id).last_seen_at == touched


def test_idle_sessions_expire(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_SESSION_IDLE_MINUTES", "30")
    session_id = handlers.login(db, "1000001", PASSWORD)["session_id"]
    with db.transaction() as s:
        s.execute(update(LoginSession).where(LoginSession.id == session_id)
                  .values(last_seen_at=datetime.now(UTC) - timedelta(minutes=31)))
    with pytest.raises(Unauthenticated):
        handlers.resolve_session(db, session_id)
    assert session_row(db, session_id).ended_at is not None


def test_sessions_of_a_disabled_account_are_refused(db: Database) -> None:
    session_id = handlers.login(db, "1000001", PASSWORD)["session_id"]
    set_account(db, "1000001", active=False)
    with pytest.raises(Unauthenticated):
        handlers.resolve_session(db, session_id)


# --- changing one's password --------------------------------------------------------

def test_a_new_account_from_staff_must_change_its_password(db: Database) -> None:
    registrar = caller("1000001", "student_affairs")
    handlers.create_account(db, registrar, "1000004", "王老师", "counselor", "classes", ["2023010101"], PASSWORD)
    first = handlers.login(db, "1000004", PASSWORD)
    assert first["must_change_password"] is True
    me = Caller.from_dict(first["caller"])
    view = handlers.change_password(db, me, PASSWORD, NEW_PASSWORD)
    assert view["must_change_password"] is False
    assert handlers.login(db, "1000004", NEW_PASSWORD)["must_change_password"] is False
    assert login_error(db, "1000004", PASSWORD) == "用户名或密码错误"
    row = account(db, "1000004")
    assert row.password_changed_at is not None and row.password_changed_at > row.created_at


def test_changing_the_password_ends_the_other_sessions(db: Database) -> None:
    here = handlers.login(db, "1000001", PASSWORD)
    elsewhere = handlers.login(db, "1000001", PASSWORD)["session_id"]
    handlers.change_password(db, Caller.from_dict(here["caller"]), PASSWORD, NEW_PASSWORD)
    assert handlers.resolve_session(db, here["session_id"])["username"] == "1000001"
    with pytest.raises(Unauthenticated):
        handlers.resolve_session(db, elsewhere)


def test_change_password_checks_the_old_one_and_the_policy(db: Database) -> None:
    me = Caller.from_dict(handlers.login(db, "1000001", PASSWORD)["caller"])
    with pytest.raises(Invalid, match="原密码不正确"):
        handlers.change_password(db, me, WRONG, NEW_PASSWORD)
    with pytest.raises(Invalid, match="密码长度不能少于10位"):
        handlers.change_password(db, me, PASSWORD, "Ab1!")
    with pytest.raises(Invalid, match="新密码不能与原密码相同"):
        handlers.change_password(db, me, PASSWORD, PASSWORD)
    with pytest.raises(Invalid, match="密码不能包含用户名"):
        handlers.change_password(db, me, PASSWORD, "Pw-1000001-x")
    assert handlers.login(db, "1000001", PASSWORD)["session_id"]  # unchanged


def test_the_system_has_no_password_to_change(db: Database) -> None:
    with pytest.raises(NotFound):
        handlers.change_password(db, SYSTEM, PASSWORD, NEW_PASSWORD)


def test_set_password_unlocks_and_ends_sessions(db: Database) -> None:
    session_id = handlers.login(db, "1000001", PASSWORD)["session_id"]
    for _ in range(5):
        login_error(db, "1000001", WRONG)
    view = handlers.set_password(db, SYSTEM, "1000001", NEW_PASSWORD)
    assert view["must_change_password"] is False  # set by the system itself (the CLI)
    with pytest.raises(Unauthenticated):
        handlers.resolve_session(db, session_id)
    assert handlers.login(db, "1000001", NEW_PASSWORD)["session_id"]


def test_only_student_affairs_and_the_system_set_passwords(db: Database) -> None:
    with pytest.raises(Forbidden):
        handlers.set_password(db, caller("1000004", "counselor", "classes", "2023010101"), "1000001", NEW_PASSWORD)
    with pytest.raises(Invalid, match="密码长度不能少于10位"):
        handlers.set_password(db, SYSTEM, "1000001", "short")
    with pytest.raises(NotFound):
        handlers.set_password(db, SYSTEM, "1000099", NEW_PASSWORD)
    assert handlers.login(db, "1000001", PASSWORD)["session_id"]


def test_duplicate_account_is_a_conflict(db: Database) -> None:
    with pytest.raises(Conflict, match="账号 1000001 已存在"):
        staff(db, "1000001")
