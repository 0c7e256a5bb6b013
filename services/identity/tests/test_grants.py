"""Grants against real SQLite and PostgreSQL: audited, bounded by the granter's scope, and
ending the grantee's sessions; the session's caller follows the grants."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from services.common.caller import Caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from services.common.models import AuditEntry
from services.identity import grants, handlers
from services.identity.tests.factories import PASSWORD, caller, registered, staff

REGISTRAR = caller("1000001", "student_affairs")
DEPUTY = caller("1000002", "deputy_secretary", "college", "01")


@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("identity")
    staff(database, "1000001", name="学生处管理员")
    staff(database, "1000002", "deputy_secretary", "college", ("01",), name="党总支副书记")
    staff(database, "1000004", "counselor", "classes", ("2023010101",), name="王老师")
    handlers.on_student_registered(database, registered("202301010105"))
    return database


def login(db: Database, username: str) -> Caller:
    return Caller.from_dict(handlers.login(db, username, PASSWORD)["caller"])


def test_a_second_grant_widens_the_scope_and_ends_open_sessions(db: Database) -> None:
    before = login(db, "1000004")
    assert before.scope.ids == ("2023010101",)
    result = grants.grant(db, DEPUTY, "1000004", "counselor", "classes", ["2023010102"])
    assert [g["scope"]["ids"] for g in result["items"]] == [["2023010101"], ["2023010102"]]
    assert result["sessions_ended"] == 1
    with pytest.raises(Unauthenticated):
        handlers.resolve_session(db, before.session_id)
    after = login(db, "1000004")
    assert (after.role, after.scope.kind, after.scope.ids) == ("counselor", "classes", ("2023010101", "2023010102"))
    with db.reading() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "grant.add")).one()
    assert (entry.actor, entry.target) == ("1000002", "1000004")
    assert len(json.loads(entry.after or "{}")["grants"]) == 2


def test_a_deputy_cannot_grant_beyond_their_college_or_role(db: Database) -> None:
    with pytest.raises(Forbidden, match="超出"):
        grants.grant(db, DEPUTY, "1000004", "counselor", "classes", ["2023020101"])
    with pytest.raises(Forbidden, match="超出"):
        grants.grant(db, DEPUTY, "1000004", "deputy_secretary", "college", ["01"])
    with pytest.raises(Forbidden):
        grants.grant(db, caller("1000004", "counselor", "classes", "2023010101"),
                     "1000002", "counselor", "classes", ["2023010101"])
    assert len(grants.list_grants(db, REGISTRAR, "1000004")["items"]) == 1


def test_grant_checks(db: Database) -> None:
    with pytest.raises(Forbidden, match="不能给自己授权"):
        grants.grant(db, REGISTRAR, "1000001", "housing_centre", "institution", [])
    with pytest.raises(Conflict):
        grants.grant(db, REGISTRAR, "1000004", "counselor", "classes", ["2023010101"])
    with pytest.raises(Invalid, match="学生账号"):
        grants.grant(db, REGISTRAR, "202301010105", "counselor", "classes", ["2023010101"])
    with pytest.raises(NotFound):
        grants.grant(db, REGISTRAR, "1000099", "counselor", "classes", ["2023010101"])
    with pytest.raises(Forbidden):  # a scoped granter learns nothing about unknown accounts
        grants.grant(db, DEPUTY, "1000099", "counselor", "classes", ["2023010101"])


def test_revoking_ends_sessions_and_leaves_no_data_scope(db: Database) -> None:
    session = login(db, "1000004")
    grant_id = grants.list_grants(db, REGISTRAR, "1000004")["items"][0]["id"]
    with pytest.raises(Forbidden):
        grants.revoke_grant(db, caller("1000004", "counselor", "classes", "2023010101"), grant_id)
    grants.revoke_grant(db, DEPUTY, grant_id)
    with pytest.raises(Unauthenticated):
        handlers.resolve_session(db, session.session_id)
    after = login(db, "1000004")
    assert (after.role, after.scope.kind, after.scope.ids) == ("counselor", "none", ())
    with pytest.raises(NotFound):
        grants.revoke_grant(db, REGISTRAR, grant_id)  # already revoked
    with db.reading() as s:
        assert s.scalars(select(AuditEntry.action).where(AuditEntry.target == "1000004")).all()[-1] == "grant.revoke"


def test_a_session_switches_to_another_role_it_holds(db: Database) -> None:
    grants.grant(db, REGISTRAR, "1000004", "housing_centre", "institution", [])
    me = login(db, "1000004")
    assert me.role == "counselor"
    switched = grants.switch_role(db, me, "housing_centre")
    assert (switched["role"], switched["scope"]["kind"]) == ("housing_centre", "institution")
    assert handlers.resolve_session(db, me.session_id)["role"] == "housing_centre"
    with pytest.raises(Forbidden, match="没有该角色"):
        grants.switch_role(db, me, "student_affairs")


def test_who_sees_grants(db: Database) -> None:
    assert grants.list_grants(db, caller("1000004", "counselor", "classes", "2023010101"), "1000004")["items"]
    assert grants.list_grants(db, DEPUTY, "1000004")["items"]  # a grant the deputy could give
    with pytest.raises(Forbidden):
        grants.list_grants(db, DEPUTY, "1000001")
    with pytest.raises(Forbidden):
        grants.list_grants(db, caller("1000004", "counselor", "classes", "2023010101"), "1000002")
