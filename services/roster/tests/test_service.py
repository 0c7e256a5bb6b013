"""RosterService in a real nameko container over a real RabbitMQ vhost."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue
from nameko.testing.services import entrypoint_hook

from services.common.caller import CONTEXT_KEY, system_caller
from services.common.db import Database
from services.common.migrate import upgrade
from services.common.topology import bindings_of, declare
from services.roster.service import RosterService
from services.roster.tests.factories import clearance_completed, student


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def roster(fresh_amqp_uri: str, tmp_path: Any, container_factory: Any) -> Any:
    url = f"sqlite:///{tmp_path}/roster.sqlite3"
    upgrade("roster", url)
    declare(fresh_amqp_uri, bindings_of([RosterService]))
    container = container_factory(RosterService, {"AMQP_URI": fresh_amqp_uri,
                                                  "ROSTER_DATABASE_URL": url})
    container.start()
    return container


def test_clearance_event_graduates_and_publishes_status_change(roster: Any, fresh_amqp_uri: str) -> None:
    system = {CONTEXT_KEY: system_caller("test").to_header()}
    with entrypoint_hook(roster, "register_students", context_data=system) as register:
        assert register([student(1)]) == {"registered": 1, "existing": 0, "warnings": []}

    status_queue = Queue("test-status-changes", Exchange("roster.events", "topic", durable=True),
                         routing_key="student.status_changed", durable=False, auto_delete=True)
    event_id = str(uuid.uuid4())
    with Connection(fresh_amqp_uri, transport_options={"confirm_publish": True}) as conn:
        status_queue(conn.default_channel).declare()
        # Published exactly as the clearance system does (contract transport section).
        conn.Producer().publish(
            json.dumps(clearance_completed("202301010101", event_id)),
            exchange=Exchange("clearance.events", "topic", durable=True),
            routing_key="clearance.completed", content_type="application/json",
            content_encoding="utf-8", delivery_mode=2,
        )
        received: list[Any] = []
        with conn.Consumer(status_queue, callbacks=[lambda body, m: (received.append(body), m.ack())],
                           accept=["json"]):
            deadline = time.monotonic() + 15
            while not received and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    pass
    assert received, "student.status_changed was not published"
    envelope = received[0] if isinstance(received[0], dict) else json.loads(received[0])
    assert envelope["type"] == "student.status_changed"
    assert envelope["payload"]["new_status"] == "graduated"
    assert envelope["correlation_id"] == event_id

    with entrypoint_hook(roster, "get_student", context_data=system) as get_student:
        assert get_student("202301010101")["status"] == "graduated"
    with entrypoint_hook(roster, "health") as health:
        assert wait_for(lambda: health()["outbox_backlog"] == 0)


def test_rpc_without_caller_is_refused(roster: Any) -> None:
    from services.common.errors import Unauthenticated

    with entrypoint_hook(roster, "get_student") as get_student, pytest.raises(Unauthenticated):
        get_student("202301010101")


def test_counselor_scope_is_checked_in_the_service(roster: Any, tmp_path: Any) -> None:
    from services.common.caller import Caller, Scope
    from services.common.errors import Forbidden

    system = {CONTEXT_KEY: system_caller("test").to_header()}
    with entrypoint_hook(roster, "register_students", context_data=system) as register:
        register([student(1), student(1, klass="2023010102")])
    counselor = Caller("1000004", "1000004", "counselor", Scope("classes", ("2023010101",)))
    ctx = {CONTEXT_KEY: counselor.to_header()}
    with entrypoint_hook(roster, "search_students", context_data=ctx) as search:
        assert [s["student_number"] for s in search("", 1, 20)["items"]] == ["202301010101"]
    with entrypoint_hook(roster, "get_student", context_data=ctx) as get_student, pytest.raises(Forbidden):
        get_student("202301010201")
    db = Database(f"sqlite:///{tmp_path}/roster.sqlite3")
    db.dispose()
