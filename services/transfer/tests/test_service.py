"""TransferService in a nameko container over the real broker and a migrated database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook

from services.common.caller import CONTEXT_KEY
from services.common.db import Database
from services.common.errors import Forbidden
from services.common.testing import publish, wait_for
from services.common.topology import bindings_of, declare
from services.transfer.adapters.orm import Student
from services.transfer.service import TransferService
from services.transfer.tests.factories import caller, registered, status_changed


def config(amqp_uri: str, db: Database) -> dict[str, Any]:
    return {"AMQP_URI": amqp_uri, "TRANSFER_DATABASE_URL": db.url}



def test_health_over_the_broker(amqp_uri: str, container_factory: Any,
                                migrated_db: Callable[[str], Database]) -> None:
    db = migrated_db("transfer")
    container = container_factory(TransferService, config(amqp_uri, db))
    container.start()
    with entrypoint_hook(container, "health") as health:
        assert health() == {"service": "transfer", "status": "ok", "db": "ok", "outbox_backlog": 0,
                            "students_known": 0}


def test_roster_events_feed_the_read_copy_read_by_rpc(fresh_amqp_uri: str, container_factory: Any,
                                                       migrated_db: Callable[[str], Database]) -> None:
    db = migrated_db("transfer")
    declare(fresh_amqp_uri, bindings_of([TransferService]))
    container = container_factory(TransferService, config(fresh_amqp_uri, db))
    container.start()

    number = "202301010105"
    publish(fresh_amqp_uri, registered(number, name="王芳"))
    publish(fresh_amqp_uri, status_changed(number, 7, "graduated", left=True))

    def left() -> bool:
        with db.reading() as s:
            row = s.get(Student, number)
            return row is not None and row.left

    wait_for(left)

    rpc_config = {"AMQP_URI": fresh_amqp_uri}
    office = {CONTEXT_KEY: caller("academic_affairs").to_header()}
    with ServiceRpcProxy("transfer", rpc_config, context_data=office) as transfer:
        view = transfer.student_for_matching(number)
    assert (view["name"], view["status"], view["may_transfer_out"]) == ("王芳", "graduated", False)

    counselor = {CONTEXT_KEY: caller("counselor", "classes", "2023010101").to_header()}
    with ServiceRpcProxy("transfer", rpc_config, context_data=counselor) as transfer:
        with pytest.raises(Forbidden):
            transfer.student_for_matching(number)
