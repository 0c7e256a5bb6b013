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
from services.common.entrypoints import batch_event_handler, event_handler
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


# --- batch_event_handler ------------------------------------------------------------------
BATCHES: list[list[str]] = []
APPLIED: Counter[str] = Counter()


class BatchService:
    """A use case that is all-or-nothing per batch, as the real ones are (one transaction)."""

    name = "batchy"

    @batch_event_handler("roster", "student.status_changed", max_attempts=2, batch_size=50)
    def on_status_changed(self, bodies: list[Any]) -> None:
        numbers = [parse_envelope(b).payload["student_number"] for b in bodies]
        BATCHES.append(numbers)
        for number in numbers:
            CALLS[number] += 1
            if CALLS[number] <= FAIL_UNTIL.get(number, 0):
                raise RuntimeError(f"boom {number}")
        APPLIED.update(numbers)  # reached only when the whole batch succeeds


BATCH_QUEUE = "evt-roster-student.status_changed--batchy.on_status_changed"


@pytest.fixture
def batchy(fresh_amqp_uri: str, container_factory: Any) -> Any:
    CALLS.clear()
    FAIL_UNTIL.clear()
    BATCHES.clear()
    APPLIED.clear()
    assert [b.queue for b in declare(fresh_amqp_uri, bindings_of([BatchService]))] == [BATCH_QUEUE]
    return container_factory(BatchService, {"AMQP_URI": fresh_amqp_uri})


def publish_many(uri: str, numbers: list[str]) -> None:
    with Connection(uri, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        for number in numbers:
            producer.publish(json.dumps(event(number)), exchange=Exchange("roster.events", "topic", durable=True),
                             routing_key="student.status_changed", content_type="application/json",
                             delivery_mode=2)


def test_waiting_events_are_handed_over_together_up_to_the_batch_size(batchy: Any, fresh_amqp_uri: str) -> None:
    numbers = [f"2023010{i:05d}" for i in range(300)]
    publish_many(fresh_amqp_uri, numbers)  # queued before the consumer starts
    batchy.start()
    wait_until(lambda: len(APPLIED) == 300)
    assert sorted(APPLIED) == numbers and set(APPLIED.values()) == {1}
    assert max(len(b) for b in BATCHES) == 50
    assert len(BATCHES) < 30  # far fewer hand-overs than events
    assert list_dead_letters(fresh_amqp_uri, [BATCH_QUEUE]) == []


def test_a_lone_event_is_not_kept_waiting_for_company(batchy: Any, fresh_amqp_uri: str) -> None:
    batchy.start()
    publish_many(fresh_amqp_uri, ["202301010101"])
    wait_until(lambda: APPLIED["202301010101"] == 1, timeout=2)
    assert BATCHES == [["202301010101"]]


def test_one_failing_event_does_not_hold_back_its_batch(batchy: Any, fresh_amqp_uri: str) -> None:
    numbers = [f"2023010{i:05d}" for i in range(40)]
    FAIL_UNTIL[numbers[7]] = 999
    publish_many(fresh_amqp_uri, numbers)
    batchy.start()
    # The batch fails as a whole; each event is then run alone: 39 apply, the bad one is
    # retried (max_attempts=2) and dead-lettered with its own count.
    wait_until(lambda: len(list_dead_letters(fresh_amqp_uri, [BATCH_QUEUE])) == 1)
    wait_until(lambda: len(APPLIED) == 39)
    assert numbers[7] not in APPLIED and set(APPLIED.values()) == {1}
    [dead] = list_dead_letters(fresh_amqp_uri, [BATCH_QUEUE])
    assert dead.attempts == 2 and f"boom {numbers[7]}" in dead.error


# --- packs: several events in one message (relay.packed) ------------------------------------
def publish_pack(uri: str, numbers: list[str]) -> None:
    """One message whose body is a JSON array of envelopes, as the relay publishes PACKED_TYPES."""
    publish(uri, [event(number) for number in numbers])


def test_a_batch_takes_the_events_of_packs(batchy: Any, fresh_amqp_uri: str) -> None:
    numbers = [f"2023010{i:05d}" for i in range(120)]
    for start in range(0, 120, 30):
        publish_pack(fresh_amqp_uri, numbers[start:start + 30])
    batchy.start()
    wait_until(lambda: len(APPLIED) == 120)
    assert sorted(APPLIED) == numbers and set(APPLIED.values()) == {1}
    # batch_size 50 counts events: two packs (60 events) at most per hand-over, never a pack cut in two
    assert {len(b) for b in BATCHES} <= {30, 60}
    assert list_dead_letters(fresh_amqp_uri, [BATCH_QUEUE]) == []


def test_a_failing_pack_is_split_and_only_its_bad_event_dead_lettered(batchy: Any, fresh_amqp_uri: str) -> None:
    numbers = [f"2023010{i:05d}" for i in range(40)]
    FAIL_UNTIL[numbers[11]] = 999
    publish_pack(fresh_amqp_uri, numbers)
    batchy.start()
    wait_until(lambda: len(list_dead_letters(fresh_amqp_uri, [BATCH_QUEUE])) == 1)
    wait_until(lambda: len(APPLIED) == 39)
    assert numbers[11] not in APPLIED and set(APPLIED.values()) == {1}
    [dead] = list_dead_letters(fresh_amqp_uri, [BATCH_QUEUE])
    assert dead.event_id is not None  # the dead letter is the one event, not the pack
    assert json.loads(dead.body)["payload"]["student_number"] == numbers[11]
    assert dead.attempts == 2 and f"boom {numbers[11]}" in dead.error


def test_a_single_event_handler_takes_a_pack_one_event_at_a_time(flaky: Any, fresh_amqp_uri: str) -> None:
    numbers = ["202301010111", "202301010112", "202301010113"]
    FAIL_UNTIL[numbers[1]] = 1  # fails once, then applies: retried alone
    publish_pack(fresh_amqp_uri, numbers)
    wait_until(lambda: CALLS[numbers[0]] == 1 and CALLS[numbers[1]] == 2 and CALLS[numbers[2]] == 1)
    time.sleep(0.5)
    assert [CALLS[n] for n in numbers] == [1, 2, 1]
    assert list_dead_letters(fresh_amqp_uri, [QUEUE]) == []
