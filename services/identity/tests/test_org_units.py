"""Identity's read model of roster's org tree: `org.units_changed` applied once, in order, and
used wherever identity needs a class's college (grants, revocations, scope checks)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nameko.testing.services import entrypoint_hook
from sqlalchemy import select

from services.common.db import Database
from services.common.envelope import new_event
from services.common.errors import Forbidden, Invalid
from services.common.events import StudentRegistered
from services.common.testing import ROSTER, org_units_changed, publish, wait_for
from services.common.topology import bindings_of, declare
from services.identity import admin, grants, handlers, org
from services.identity.adapters.orm import OrgUnit
from services.identity.service import IdentityService
from services.identity.tests.factories import SYSTEM, caller, staff

DEPUTY = caller("1000002", "deputy_secretary", "college", "01")
REGISTRAR = caller("1000001", "student_affairs")
MOVED_IN = "2023020105"  # its code names college 02; roster put it under 01's major
MOVED_OUT = "2023010107"  # its code names college 01; roster put it under 02's major
ORPHAN = "2023010108"  # roster put it under a major identity has not heard of
TREE = org_units_changed(("01", "college", None), ("02", "college", None), ("0101", "major", "01"),
                         ("0201", "major", "02"), (MOVED_IN, "class", "0101"), (MOVED_OUT, "class", "0201"),
                         (ORPHAN, "class", "0109"))


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    database = migrated_db("identity")
    staff(database, "1000002", "deputy_secretary", "college", ("01",))
    staff(database, "1000004", "counselor", "classes", ("2023010101",))
    handlers.on_org_units_changed(database, TREE)
    return database


def unit(db: Database, code: str) -> tuple[str, str, str | None] | None:
    with db.reading() as s:
        row = s.get(OrgUnit, code)
        return None if row is None else (row.name, row.kind, row.parent_code)


def test_the_event_is_applied_once(db: Database) -> None:
    assert unit(db, MOVED_IN) == (f"班级{MOVED_IN}", "class", "0101")
    with db.transaction() as s:  # changed meanwhile (as a later event would)
        row = s.get(OrgUnit, MOVED_IN)
        assert row is not None
        row.parent_code = "0201"
    handlers.on_org_units_changed(db, TREE)  # redelivered: no effect
    assert unit(db, MOVED_IN) == (f"班级{MOVED_IN}", "class", "0201")


def test_an_older_save_arriving_late_does_not_undo_a_newer_one(db: Database) -> None:
    now = datetime.now(UTC)
    handlers.on_org_units_changed(db, org_units_changed((MOVED_IN, "class", "0201"), occurred_at=now))
    handlers.on_org_units_changed(db, org_units_changed((MOVED_IN, "class", "0101"), ("03", "college", None),
                                                        occurred_at=now - timedelta(minutes=1)))
    assert unit(db, MOVED_IN) == (f"班级{MOVED_IN}", "class", "0201")
    assert unit(db, "03") == ("学院03", "college", None)  # what the older save alone knew still counts


def test_a_deputy_secretary_grants_over_a_class_of_their_college_by_its_org_unit(db: Database) -> None:
    made = grants.grant(db, DEPUTY, "1000004", "counselor", "classes", [MOVED_IN])
    assert made["items"][-1]["scope"] == {"kind": "classes", "ids": [MOVED_IN]}
    for klass in (MOVED_OUT, ORPHAN):  # the code says 01, the read model does not
        with pytest.raises(Forbidden, match="授权超出了您本人的角色或数据范围"):
            grants.grant(db, DEPUTY, "1000004", "counselor", "classes", [klass])


def test_a_class_not_heard_of_yet_falls_back_to_its_code(db: Database) -> None:
    grants.grant(db, DEPUTY, "1000004", "counselor", "classes", ["2023010199"])
    with pytest.raises(Forbidden, match="授权超出了您本人的角色或数据范围"):
        grants.grant(db, DEPUTY, "1000004", "counselor", "classes", ["2023020199"])


def test_listing_revoking_and_finding_counselors_follow_the_read_model(db: Database) -> None:
    theirs = grants.grant(db, SYSTEM, "1000004", "counselor", "classes", [MOVED_IN])["items"][-1]["id"]
    other = grants.grant(db, SYSTEM, "1000004", "counselor", "classes", [MOVED_OUT])["items"][-1]["id"]
    seen = grants.list_grants(db, DEPUTY, "1000004")["items"]
    assert [g["scope"]["ids"] for g in seen] == [["2023010101"], [MOVED_IN]]  # the first by its code
    with pytest.raises(Forbidden, match="无权撤销该授权"):
        grants.revoke_grant(db, DEPUTY, other)
    grants.revoke_grant(db, DEPUTY, theirs)
    staff(db, "1000005", "counselor", "classes", (MOVED_IN,))
    staff(db, "1000006", "counselor", "classes", (MOVED_OUT,))
    found = admin.search_accounts(db, DEPUTY, "10000")["items"]
    assert [a["username"] for a in found] == ["1000004", "1000005"]


def test_initial_passwords_of_a_class_follow_the_read_model(db: Database) -> None:
    handlers.on_student_registered(db, new_event(
        "student.registered", StudentRegistered(student_number="202302010501", name="周敏", gender="2",
                                                college_code="01", class_code=MOVED_IN, status="enrolled",
                                                left=False),
        source="roster", actor=ROSTER))
    issued = admin.issue_initial_passwords(db, DEPUTY, MOVED_IN)
    assert [i["student_number"] for i in issued["items"]] == ["202302010501"]
    with pytest.raises(Forbidden, match="不在您的数据权限范围内"):
        admin.issue_initial_passwords(db, DEPUTY, MOVED_OUT)


def test_org_units_lists_units_with_their_college(db: Database) -> None:
    classes = org.org_units(db, REGISTRAR, "class")["items"]
    assert [(u["code"], u["college_code"]) for u in classes] == [
        (MOVED_OUT, "02"), (ORPHAN, None), (MOVED_IN, "01")]
    assert classes[-1] == {"code": MOVED_IN, "name": f"班级{MOVED_IN}", "kind": "class", "parent_code": "0101",
                          "college_code": "01"}
    assert len(org.org_units(db, DEPUTY)["items"]) == 7
    with pytest.raises(Forbidden):
        org.org_units(db, caller("202301010105", "student", "self", "202301010105"))
    with pytest.raises(Invalid):
        org.org_units(db, REGISTRAR, "campus")


def test_the_service_consumes_the_event_and_answers_org_units(fresh_amqp_uri: str, container_factory: Any,
                                                               migrated_db: Callable[[str], Database]) -> None:
    db = migrated_db("identity")
    declare(fresh_amqp_uri, bindings_of([IdentityService]))
    container = container_factory(IdentityService, {"AMQP_URI": fresh_amqp_uri, "IDENTITY_DATABASE_URL": db.url})
    container.start()
    publish(fresh_amqp_uri, TREE)
    publish(fresh_amqp_uri, TREE)  # a duplicate delivery

    def count() -> int:
        with db.reading() as s:
            return len(s.scalars(select(OrgUnit)).all())

    wait_for(lambda: count() == 7)
    with entrypoint_hook(container, "org_units", context_data={"xueji_caller": REGISTRAR.to_header()}) as units:
        assert [u["code"] for u in units("college")["items"]] == ["01", "02"]
