"""Reliable event handler: retries with a count, dead-letters, replays (real RabbitMQ)."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from kombu import Connection, Exchange

from services.common.deadletters import list_dead_letters, replay
from services.common.entrypoints import event_handler
from services.common.envelope import Actor, new_event, parse_envelope
from services.common.events import StudentStatusChanged
from services.common.topology import bindings_of, declare

CALLS: Counter[str] = Counter()
FAIL_UNTIL: dict[str, int] = {}  # student_number -> attempts that raise (999 = always)


class FlakyService:
    name = "flaky"

    @event_handler("roster", "student.status_changed", max_attempts=3)
    def on_status_changed(self, body: Any) -> None:
        envelope = parse_envelope(body)  # InvalidEvent for a bad body → dead letter at once
        number = envelope.payload["student_number"]
        CALLS[number] += 1
        if CALLS[number] <= FAIL_UNTIL.get(number, 0):
            raise RuntimeError(f"boom {number}")


QUEUE = "evt-roster-student.status_changed--flaky.on_status_changed"


def publish(uri: str, body: Any) -> None:
    with Connection(uri, transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(json.dumps(body), exchange=Exchange("roster.events", "topic", durable=True),
                                routing_key="student.status_changed", content_type="application/json",
                                delivery_mode=2)


def event(number: str) -> dict[str, Any]:
    return new_event("student.status_changed", StudentStatusChanged(
        student_number=number, change_id=1, old_status="enrolled", new_status="graduated",
        left=True, reason="r", effective_at=datetime.fromisoformat("2027-06-28T10:15:00+08:00")),
        source="roster", actor=Actor(kind="system", id="t")).to_wire()


def wait_until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def flaky(fresh_amqp_uri: str, container_factory: Any) -> Any:
    CALLS.clear()
    FAIL_UNTIL.clear()
    assert [b.queue for b in declare(fresh_amqp_uri, bindings_of([FlakyService]))] == [QUEUE]
    container = container_factory(FlakyService, {"AMQP_URI": fresh_amqp_uri})
    container.start()
    return container


def test_transient_failure_is_retried_until_it_succeeds(flaky: Any, fresh_amqp_uri: str) -> None:
    FAIL_UNTIL["202301010101"] = 2
    publish(fresh_amqp_uri, event("202301010101"))
    wait_until(lambda: CALLS["202301010101"] == 3)
    time.sleep(0.5)
    assert CALLS["202301010101"] == 3
    assert list_dead_letters(fresh_amqp_uri, [QUEUE]) == []


def test_persistent_failure_is_dead_lettered_and_replayable(flaky: Any, fresh_amqp_uri: str) -> None:
    FAIL_UNTIL["202301010102"] = 999
    publish(fresh_amqp_uri, event("202301010102"))
    publish(fresh_amqp_uri, event("202301010103"))  # healthy events keep flowing
    wait_until(lambda: len(list_dead_letters(fresh_amqp_uri, [QUEUE])) == 1)
    assert CALLS["202301010102"] == 3 and CALLS["202301010103"] == 1
    [dead] = list_dead_letters(fresh_amqp_uri, [QUEUE])
    assert dead.attempts == 3 and "boom" in dead.error
    assert len(list_dead_letters(fresh_amqp_uri, [QUEUE])) == 1  # listing does not consume

    FAIL_UNTIL["202301010102"] = 0  # the operator fixed the cause
    assert replay(fresh_amqp_uri, [QUEUE]) == 1
    wait_until(lambda: CALLS["202301010102"] == 4)
    assert list_dead_letters(fresh_amqp_uri, [QUEUE]) == []


def test_invalid_event_is_dead_lettered_without_retries(flaky: Any, fresh_amqp_uri: str) -> None:
    bad = event("202301010104")
    bad["payload"]["left"] = "perhaps"
    publish(fresh_amqp_uri, bad)
    wait_until(lambda: len(list_dead_letters(fresh_amqp_uri, [QUEUE])) == 1)
    [dead] = list_dead_letters(fresh_amqp_uri, [QUEUE])
    assert dead.attempts == 1 and "InvalidEvent" in dead.error
    assert dead.event_id == bad["event_id"]
