"""Outbox and relay against real SQLite/PostgreSQL and a real RabbitMQ vhost."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue
from sqlalchemy import select

from services.common.db import Database
from services.common.envelope import Actor, envelopes_in, new_event
from services.common.events import StudentStatusChanged
from services.common.inbox import first_delivery
from services.common.models import MessagingBase, OutboxMessage
from services.common.outbox import record_event, unpublished_count
from services.common.relay import OutboxRelay


@pytest.fixture
def db(database_url_for: Any) -> Any:
    database = Database(database_url_for("common"))
    MessagingBase.metadata.create_all(database.engine)
    yield database
    database.dispose()


def envelope(n: int) -> Any:
    return new_event("student.status_changed", StudentStatusChanged(
        student_number=f"2023010101{n:02d}", change_id=n, old_status="enrolled",
        new_status="graduated", left=True, reason="r",
        effective_at=datetime.fromisoformat("2027-06-28T10:15:00+08:00")),
        source="roster", actor=Actor(kind="system", id="t"))


def test_event_and_change_commit_or_roll_back_together(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as s:
        record_event(s, envelope(1))
        raise RuntimeError("the state change failed")
    with db.reading() as s:
        assert unpublished_count(s) == 0
    with db.transaction() as s:
        record_event(s, envelope(1))
    with db.reading() as s:
        assert unpublished_count(s) == 1


def test_relay_waits_for_the_broker_then_publishes_with_confirms(db: Database, fresh_amqp_uri: str) -> None:
    sent = [envelope(n) for n in range(1, 8)]
    with db.transaction() as s:
        for e in sent:
            record_event(s, e)
    down = OutboxRelay(db, "amqp://guest:guest@127.0.0.1:1/", batch_size=3)
    with pytest.raises(OSError):
        down.publish_pending()
    with db.reading() as s:
        assert unpublished_count(s) == 7  # nothing marked while the broker is unreachable

    queue = Queue("relay-test", Exchange("roster.events", "topic", durable=True),
                  routing_key="student.status_changed", durable=True)
    with Connection(fresh_amqp_uri) as conn:
        queue(conn.default_channel).declare()
        relay = OutboxRelay(db, fresh_amqp_uri, batch_size=3)
        assert relay.drain() == 7
        relay.close()
        got = []
        while (msg := queue(conn.default_channel).get(no_ack=True)) is not None:
            got.append(msg)
    # status changes are packed (events.PACKED_TYPES), at most a relay batch per message
    assert [len(envelopes_in(json.loads(m.body))) for m in got] == [3, 3, 1]
    assert [e["event_id"] for m in got for e in envelopes_in(json.loads(m.body))] == [str(e.event_id) for e in sent]
    assert got[0].properties["delivery_mode"] == 2
    assert got[0].properties["message_id"] == str(sent[0].event_id)
    with db.reading() as s:
        assert unpublished_count(s) == 0
        assert all(r.published_at for r in s.scalars(select(OutboxMessage)))


def test_inbox_applies_an_event_once(db: Database) -> None:
    e = envelope(3)
    with db.transaction() as s:
        assert first_delivery(s, e, "housing.on_status_changed")
    with db.transaction() as s:
        assert not first_delivery(s, e, "housing.on_status_changed")
        assert first_delivery(s, e, "identity.on_status_changed")  # another consumer
