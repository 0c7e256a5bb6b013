"""AidService in a nameko container over the real broker and a migrated database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook

from services.aid.adapters.orm import Student
from services.aid.service import AidService
from services.aid.tests.factories import caller, registered, status_changed
from services.common.caller import CONTEXT_KEY
from services.common.db import Database
from services.common.errors import Forbidden
from services.common.testing import publish, wait_for
from services.common.topology import bindings_of, declare


def config(amqp_uri: str, db: Database) -> dict[str, Any]:
    return {"AMQP_URI": amqp_uri, "AID_DATABASE_URL": db.url}



def test_health_over_the_broker(amqp_uri: str, container_factory: Any,
                                migrated_db: Callable[[str], Database]) -> None:
    db = migrated_db("aid")
    container = container_factory(AidService, config(amqp_uri, db))
    container.start()
    with entrypoint_hook(container, "health") as health:
        assert health() == {"service": "aid", "status": "ok", "db": "ok", "outbox_backlog": 0,
                            "students_known": 0}


def test_roster_events_feed_the_register_read_by_rpc(fresh_amqp_uri: str, container_factory: Any,
                                                      migrated_db: Callable[[str], Database]) -> None:
    db = migrated_db("aid")
    declare(fresh_amqp_uri, bindings_of([AidService]))
    container = container_factory(AidService, config(fresh_amqp_uri, db))
    container.start()

    number = "202301010105"
    publish(fresh_amqp_uri, registered(number, name="王芳"))
    publish(fresh_amqp_uri, status_changed(number, 7, "graduated", left=True))

    def stopped() -> bool:
        with db.reading() as s:
            row = s.get(Student, number)
            return row is not None and row.stop_instalments

    wait_for(stopped)

    rpc_config = {"AMQP_URI": fresh_amqp_uri}
    operator = {CONTEXT_KEY: caller("aid_operator").to_header()}
    with ServiceRpcProxy("aid", rpc_config, context_data=operator) as aid:
        view = aid.enrolled_student(number)
    assert (view["name"], view["enrolled"], view["stop_instalments"]) == ("王芳", False, True)

    outsider = {CONTEXT_KEY: caller("counselor", "classes", "2099990101").to_header()}
    with ServiceRpcProxy("aid", rpc_config, context_data=outsider) as aid:
        with pytest.raises(Forbidden):
            aid.enrolled_student(number)


def test_the_review_chain_over_rpc_with_each_callers_context(amqp_uri: str, container_factory: Any,
                                                             migrated_db: Callable[[str], Database]) -> None:
    from services.aid.tests.flow import CLASS, YEAR, allocate, enrol, identify, number

    db = migrated_db("aid")
    student_number = number(1)
    enrol(db, student_number)
    identify(db, student_number)
    allocate(db, "GJZXJ", 1)
    container = container_factory(AidService, config(amqp_uri, db))
    container.start()

    def as_(role: str, kind: str = "institution", *ids: str) -> dict[str, str]:
        return {CONTEXT_KEY: caller(role, kind, *ids).to_header()}

    rpc_config = {"AMQP_URI": amqp_uri}
    with ServiceRpcProxy("aid", rpc_config, context_data=as_("student", "self", student_number)) as aid:
        app = aid.apply({"student_number": student_number, "programme_code": "GJZXJ", "academic_year": YEAR,
                         "statement": "申请"})
    for role, kind, ids in (("counselor", "classes", (CLASS,)), ("deputy_secretary", "college", ("01",)),
                            ("aid_operator", "institution", ()), ("aid_auditor", "institution", ())):
        with ServiceRpcProxy("aid", rpc_config, context_data=as_(role, kind, *ids)) as aid:
            app = aid.review(app["id"], "approve", "")
    assert app["status"] == "audited"
    with ServiceRpcProxy("aid", rpc_config, context_data=as_("housing_centre")) as aid:
        with pytest.raises(Forbidden):
            aid.get_application(app["id"])
    with ServiceRpcProxy("aid", rpc_config, context_data=as_("aid_operator")) as aid:
        assert aid.aided_register(YEAR)["total"] == 1
