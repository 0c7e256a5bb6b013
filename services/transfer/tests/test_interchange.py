"""The interchange transport (services/transfer/interchange.py) on real SQLite and PostgreSQL, with the
real workflow (transfers.apply_incoming / on_acked, roster in-process) and, where a broker matters, a
real RabbitMQ vhost. Messages from the peer are built by the peer simulator (tests/peer.py), which is
written from the contract alone: what it signs, we must verify; what we sign, it must verify."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kombu import Connection, Exchange
from nameko.testing.services import entrypoint_hook
from sqlalchemy import func, select

from services.common.caller import system_caller
from services.common.db import Database
from services.common.entrypoints import ROUTING_HEADER, RawQueue, raw_consumer
from services.common.errors import Forbidden
from services.common.testing import caller
from services.common.topology import bindings_of, declare
from services.transfer import interchange
from services.transfer.adapters.orm import InterchangeMessage, Peer, PeerKey, Transfer
from services.transfer.domain import protocol
from services.transfer.outgoing import own_code, queue_message
from services.transfer.service import TransferService
from services.transfer.tests.roster_local import LocalRoster
from tests.peer import PeerInstitution, Wire

PEER, STRANGER, OTHER = "4133010002", "4199010009", "4111010003"
KEY, NEW_KEY = b"shared-key-2026-0000000000000000", b"shared-key-2027-1111111111111111"
T0 = datetime(2026, 9, 10, 8, 0, tzinfo=UTC)
STUDENT = {"national_student_id": "G330102200501010018", "name": "陈晓", "gender": "1",
           "birth_date": "2005-01-01", "id_type": "1", "id_number": "330102200501010018",
           "outflow_student_number": "202301010199"}  # not in our roster: a mismatch, but a real effect


def add_peer(db: Database, code: str = PEER, keys: dict[str, bytes] | None = None) -> None:
    with db.transaction() as s:
        s.add(Peer(code=code, name="浙江测试学院", province="33", authority_code="330000", active=True, created_at=T0))
        for i, (key_id, secret) in enumerate(({"k2026": KEY} if keys is None else keys).items()):
            s.add(PeerKey(peer_code=code, key_id=key_id, secret=secret, state="active",
                          created_at=T0 + timedelta(seconds=i), created_by="test"))


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    db = migrated_db("transfer")
    add_peer(db)
    return db


@pytest.fixture
def roster(migrated_db: Callable[[str], Database]) -> LocalRoster:
    return LocalRoster(migrated_db("roster"))


def peer(amqp_uri: str = "amqp://unused", code: str = PEER, **keys: bytes) -> PeerInstitution:
    return PeerInstitution(amqp_uri, code, partner=own_code(), keys=keys or {"k2026": KEY})


def receive(db: Database, roster: LocalRoster, wire: Wire, routing: str | None = None,
            now: datetime | None = None) -> str:
    return interchange.receive_raw(db, wire.body, wire.headers, routing or wire.routing_key, roster, now=now)


def rows(db: Database, **where: Any) -> list[InterchangeMessage]:
    with db.reading() as s:
        query = select(InterchangeMessage).order_by(InterchangeMessage.id)
        for key, value in where.items():
            query = query.where(getattr(InterchangeMessage, key) == value)
        return list(s.scalars(query))


def acks_out(db: Database) -> list[dict[str, Any]]:
    return [json.loads(r.body)["payload"] | {"to": r.peer_code}
            for r in rows(db, direction="out", kind=protocol.ACK)]


def utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def count(db: Database, model: Any) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


class Wires:
    """send_due's `publish`: keeps what was published (optionally failing, as a broker that is away)."""

    def __init__(self) -> None:
        self.sent: list[protocol.Outgoing] = []
        self.down = False

    def __call__(self, out: protocol.Outgoing) -> None:
        if self.down:
            raise ConnectionRefusedError("broker away")
        self.sent.append(out)


# ---- receiving -------------------------------------------------------------------------------------


def test_a_request_applies_once_and_a_repeat_is_only_acked_duplicate(db: Database, roster: LocalRoster) -> None:
    sim = peer()
    transfer_id = str(uuid.uuid4())
    request = sim.request(transfer_id, STUDENT, send=False)
    assert receive(db, roster, request) == "accepted"
    with db.reading() as s:
        t = s.get(Transfer, transfer_id)
        assert t is not None and (t.direction, t.state) == ("outflow", "rejected")  # unknown number: mismatch
    decisions = rows(db, direction="out", kind=protocol.DECISION)
    assert [json.loads(d.body)["payload"]["reason"] for d in decisions] == [protocol.STUDENT_MISMATCH]

    assert receive(db, roster, request) == "duplicate"  # redelivered, or re-sent by the peer
    assert receive(db, roster, request) == "duplicate"
    assert count(db, Transfer) == 1 and len(rows(db, direction="out", kind=protocol.DECISION)) == 1
    assert acks_out(db) == [
        {"acked_message_id": request.message_id, "result": "accepted", "error": None, "to": PEER},
        {"acked_message_id": request.message_id, "result": "duplicate", "error": None, "to": PEER},
        {"acked_message_id": request.message_id, "result": "duplicate", "error": None, "to": PEER}]
    incoming = rows(db, direction="in")
    assert [(r.state, r.message_id) for r in incoming] == [("applied", request.message_id), ("duplicate", None),
                                                          ("duplicate", None)]
    assert {r.transfer_id for r in incoming} == {transfer_id} and incoming[0].body == request.body
    assert json.loads(incoming[0].headers)["x-signature"] == request.headers["x-signature"]


def test_a_message_the_workflow_refuses_changes_nothing_and_is_answered_rejected(
        db: Database, roster: LocalRoster) -> None:
    sim = peer()
    unknown = str(uuid.uuid4())
    decision = sim.decision(unknown, protocol.OUTFLOW_SCHOOL, send=False)
    assert receive(db, roster, decision) == "rejected"
    assert count(db, Transfer) == 0
    [row] = rows(db, direction="in")
    assert (row.state, row.error, row.message_id, row.transfer_id) == ("rejected", "unknown_transfer", None, unknown)
    assert acks_out(db) == [{"acked_message_id": decision.message_id, "result": "rejected",
                             "error": "unknown_transfer", "to": PEER}]
    # Not recorded as received: once the peer fixes things, the same message may still apply.
    assert receive(db, roster, decision) == "rejected"


def test_refused_messages_are_listed_and_answered_only_to_a_known_sender(db: Database, roster: LocalRoster) -> None:
    sim = peer()
    transfer_id = str(uuid.uuid4())
    forged = sim.forged(protocol.REQUEST, transfer_id, sim.request(transfer_id, STUDENT, send=False).parsed["payload"])
    unknown_key = sim.message(protocol.CANCEL, transfer_id, {"reason": "撤回"}, key_id="k1999", key=b"x" * 32)
    misaddressed = sim.cancel(transfer_id, recipient=OTHER, send=False)
    stranger = peer(code=STRANGER, k1=b"s" * 32).cancel(transfer_id, send=False)
    forged_ack = sim.message(protocol.ACK, transfer_id, {"acked_message_id": str(uuid.uuid4()), "result": "accepted",
                                                         "error": None}, key=b"f" * 32)
    not_json = Wire("不是消息".encode(), f"inst.{own_code()}", dict(sim.cancel(transfer_id, send=False).headers))
    not_json.headers["x-signature"] = protocol.signature(KEY, not_json.body)

    rerouted = sim.cancel(transfer_id, recipient=OTHER, send=False)
    outcomes = [receive(db, roster, forged), receive(db, roster, unknown_key),
                receive(db, roster, misaddressed),  # routed inst.OTHER, yet in our inbox: a misrouting link
                receive(db, roster, stranger), receive(db, roster, forged_ack), receive(db, roster, not_json),
                receive(db, roster, rerouted, routing=f"inst.{own_code()}")]  # body and routing key disagree
    assert outcomes == ["rejected"] * 7
    assert count(db, Transfer) == 0  # nothing changed

    listed = interchange.problems(db, caller("it_centre"))
    assert listed["total"] == 7 and listed["page"] == 1
    by_id = {p["message_id"]: p for p in listed["items"]}
    assert [(p["sender"], p["recipient"], p["kind"], p["error"]) for p in reversed(listed["items"])] == [
        (PEER, own_code(), protocol.REQUEST, "bad_signature"),
        (PEER, own_code(), protocol.CANCEL, "bad_signature"),
        (PEER, OTHER, protocol.CANCEL, "wrong_recipient"),
        (STRANGER, own_code(), protocol.CANCEL, "bad_signature"),
        (PEER, own_code(), protocol.ACK, "bad_signature"),
        (PEER, own_code(), None, "bad_schema"),
        (PEER, OTHER, protocol.CANCEL, "bad_schema")]
    assert by_id[forged.message_id]["transfer_id"] is None  # a forgery does not enter a transfer's history
    assert by_id[misaddressed.message_id]["transfer_id"] == transfer_id  # signed by the peer: it may
    assert "k1999" in by_id[unknown_key.message_id]["detail"]
    assert all(p["received_at"] and p["id"] for p in listed["items"])

    # Answered: the known sender, for messages it could match (a message_id), never an ack, never a stranger.
    assert acks_out(db) == [
        {"acked_message_id": forged.message_id, "result": "rejected", "error": "bad_signature", "to": PEER},
        {"acked_message_id": unknown_key.message_id, "result": "rejected", "error": "bad_signature", "to": PEER},
        {"acked_message_id": misaddressed.message_id, "result": "rejected", "error": "wrong_recipient", "to": PEER},
        {"acked_message_id": rerouted.message_id, "result": "rejected", "error": "bad_schema", "to": PEER}]
    # ... signed with the key we share with that peer: the simulator accepts every answer.
    wires = Wires()
    assert interchange.send_due(db, wires) == 4
    for out in wires.sent:
        body, error = sim._check(out.body, out.headers, out.routing_key)
        assert error is None and body is not None and body["kind"] == protocol.ACK

    with pytest.raises(Forbidden):
        interchange.problems(db, caller("counselor", "classes", "2023010101"))
    assert [p["error"] for p in interchange.problems(db, caller("student_affairs"), page=2, per_page=4)["items"]] \
        == ["wrong_recipient", "bad_signature", "bad_signature"]


def test_an_ack_settles_our_message_once(db: Database, roster: LocalRoster) -> None:
    sim, other = peer(), peer(code=OTHER, k9=b"o" * 32)
    add_peer(db, OTHER, {"k9": b"o" * 32})
    transfer_id = str(uuid.uuid4())
    with db.transaction() as s:
        sent = queue_message(s, peer_code=PEER, kind=protocol.CANCEL, transfer_id=transfer_id,
                             payload={"reason": "学生撤回申请"}, now=T0)
        refused = queue_message(s, peer_code=PEER, kind=protocol.CANCEL, transfer_id=transfer_id,
                                payload={"reason": "再次撤回"}, now=T0)
    assert interchange.send_due(db, Wires(), now=T0) == 2

    assert receive(db, roster, other.ack(transfer_id, sent.message_id, send=False)) == "ignored"  # not its message
    ack = sim.ack(transfer_id, sent.message_id, send=False)
    assert receive(db, roster, ack, now=T0 + timedelta(seconds=1)) == "accepted"
    assert receive(db, roster, ack) == "duplicate"
    assert receive(db, roster, sim.ack(transfer_id, sent.message_id, "duplicate", send=False)) == "ignored"
    assert receive(db, roster, sim.ack(transfer_id, refused.message_id, "rejected", "invalid_state",
                                       send=False)) == "accepted"
    assert receive(db, roster, sim.ack(transfer_id, str(uuid.uuid4()), send=False)) == "ignored"

    [first, second] = rows(db, direction="out", kind=protocol.CANCEL)
    assert (first.state, first.error, utc(first.acked_at), first.next_attempt_at) == \
        ("acked", None, T0 + timedelta(seconds=1), None)
    assert (second.state, second.error) == ("rejected", "invalid_state")
    assert acks_out(db) == []  # an ack is never answered
    assert interchange.send_due(db, Wires(), now=T0 + timedelta(days=1)) == 0  # settled: never re-sent


def test_unacked_messages_are_resent_with_backoff_same_body_current_key(db: Database) -> None:
    with db.transaction() as s:
        message = queue_message(s, peer_code=PEER, kind=protocol.CANCEL, transfer_id=str(uuid.uuid4()),
                                payload={"reason": "撤回"}, now=T0)
        ack = queue_message(s, peer_code=PEER, kind=protocol.ACK, transfer_id=str(uuid.uuid4()), now=T0,
                            payload={"acked_message_id": str(uuid.uuid4()), "result": "accepted", "error": None})
        dropped = queue_message(s, peer_code=PEER, kind=protocol.DECISION, transfer_id=str(uuid.uuid4()), now=T0,
                                payload={"stage": "outflow_school", "decision": "approved",
                                         "decided_at": T0.isoformat()})
        dropped.state = "cancelled"  # what the workflow does to a cancelled transfer's messages
    wires = Wires()
    at = [0, 1, 2, 3, 6, 13, 14]  # seconds after T0: due at 0, 2 (after 2 s), 6 (after 4 s), 14 (after 8 s)
    sent = [interchange.send_due(db, wires, now=T0 + timedelta(seconds=t)) for t in at]
    assert sent == [2, 0, 1, 0, 1, 0, 1]
    assert [o.message_id for o in wires.sent] == [message.message_id, ack.message_id] + [message.message_id] * 3
    assert {o.body for o in wires.sent if o.message_id == message.message_id} == {message.body}
    [row] = rows(db, id=message.id)
    assert (row.state, row.attempts, utc(row.next_attempt_at)) == ("sent", 4, T0 + timedelta(seconds=14 + 16))
    assert rows(db, id=ack.id)[0].attempts == 1  # an ack goes once

    # Key rotation: a new key added, the old one still active; re-sends are signed with the newest.
    with db.transaction() as s:
        s.add(PeerKey(peer_code=PEER, key_id="k2027", secret=NEW_KEY, state="active", created_at=T0 + timedelta(days=1),
                      created_by="test"))
    assert interchange.send_due(db, wires, now=T0 + timedelta(minutes=5)) == 1
    newest = wires.sent[-1]
    assert (newest.body, newest.headers["x-key-id"]) == (message.body, "k2027")
    assert peer(k2027=NEW_KEY)._check(newest.body, newest.headers, newest.routing_key)[1] is None
    # Backoff is capped (TRANSFER_RESEND_MAX_SECONDS, 300 s).
    assert utc(rows(db, id=message.id)[0].next_attempt_at) == T0 + timedelta(minutes=5, seconds=32)


def test_a_message_to_a_peer_without_a_key_waits(db: Database) -> None:
    add_peer(db, OTHER, {})
    with db.transaction() as s:
        queue_message(s, peer_code=OTHER, kind=protocol.CANCEL, transfer_id=str(uuid.uuid4()),
                      payload={"reason": "撤回"}, now=T0)
    assert interchange.send_due(db, Wires(), now=T0) == 0
    [row] = rows(db, direction="out")
    assert (row.state, row.attempts) == ("pending", 0) and "没有可用的密钥" in (row.detail or "")
    assert row.next_attempt_at is not None and utc(row.next_attempt_at) > T0


def test_resend_now_makes_unacked_messages_due(db: Database) -> None:
    transfer_id = str(uuid.uuid4())
    with db.transaction() as s:
        queue_message(s, peer_code=PEER, kind=protocol.CANCEL, transfer_id=transfer_id, payload={"reason": "撤回"},
                      now=T0)
    wires = Wires()
    assert interchange.send_due(db, wires, now=T0) == 1
    assert interchange.resend_now(db, caller("academic_affairs"), transfer_id, now=T0) == {"due": 1}
    assert interchange.send_due(db, wires, now=T0) == 1
    assert interchange.resend_now(db, caller("student_affairs"), str(uuid.uuid4()), now=T0) == {"due": 0}
    with pytest.raises(Forbidden):
        interchange.resend_now(db, caller("authority", "area", "420100"))


# ---- over a real broker ----------------------------------------------------------------------------


@pytest.fixture
def sim(fresh_amqp_uri: str) -> Iterator[PeerInstitution]:
    sim = peer(fresh_amqp_uri).start()
    yield sim
    sim.close()


def test_a_broker_down_leaves_messages_waiting_then_the_peer_gets_them(
        db: Database, roster: LocalRoster, sim: PeerInstitution, fresh_amqp_uri: str) -> None:
    declare(fresh_amqp_uri, bindings_of([TransferService]))  # our inbox, for the peer's ack
    transfer_id = str(uuid.uuid4())
    with db.transaction() as s:
        message = queue_message(s, peer_code=PEER, kind=protocol.CANCEL, transfer_id=transfer_id,
                                payload={"reason": "学生撤回申请"})
    away = interchange.BrokerPublisher("amqp://guest:guest@127.0.0.1:1//")
    started = time.monotonic()
    assert interchange.send_due(db, away) == 0
    assert time.monotonic() - started < 10
    [row] = rows(db, direction="out")
    assert (row.state, row.attempts) == ("pending", 0)

    broker = interchange.BrokerPublisher(fresh_amqp_uri)
    try:
        assert interchange.send_due(db, broker) == 1
    finally:
        broker.close()
    [got] = sim.wait(protocol.CANCEL, transfer_id)
    [delivery] = [d for d in sim.received if d.body == got]
    assert delivery.raw == message.body and delivery.routing_key == f"inst.{PEER}"
    # The contract's properties (kombu adds the body's encoding, which is the contract's UTF-8).
    assert delivery.properties == {"content_type": "application/json", "content_encoding": "utf-8",
                                   "delivery_mode": 2, "message_id": message.message_id, "type": protocol.CANCEL}
    assert {k: v for k, v in delivery.headers.items() if k != "x-signature"} == {
        "x-protocol": "xj-transfer/1", "x-sender": own_code(), "x-recipient": PEER, "x-key-id": "k2026"}

    # The simulator's ack comes back through our inbox queue, bytes as sent.
    with Connection(fresh_amqp_uri) as conn:
        conn.default_channel.auto_decode = False  # the body's bytes, as the raw consumer gets them
        queue = conn.SimpleQueue(protocol.inbox_queue(own_code()))
        answer = queue.get(timeout=10)
        assert isinstance(answer.body, bytes)
        outcome = interchange.receive_raw(db, answer.body, dict(answer.headers),
                                          answer.delivery_info["routing_key"], roster)
        answer.ack()
        queue.close()
    assert outcome == "accepted"
    assert rows(db, direction="out")[0].state == "acked"


class RawProbe:
    """A service with nothing but a raw consumer: fails the first delivery of each body."""

    name = "raw_probe"
    calls: list[tuple[bytes, dict[str, Any], str]] = []

    @raw_consumer(where=lambda: RawQueue("probe.exchange", "inst.1234567890", "probe.inbox"))
    def receive(self, body: bytes, headers: dict[str, Any], routing_key: str) -> None:
        RawProbe.calls.append((body, headers, routing_key))
        if sum(1 for b, _, _ in RawProbe.calls if b == body) == 1:
            raise RuntimeError("first attempt fails")


def test_the_raw_consumer_passes_exact_bytes_and_keeps_the_routing_key_on_retry(
        fresh_amqp_uri: str, container_factory: Any) -> None:
    RawProbe.calls.clear()
    container = container_factory(RawProbe, {"AMQP_URI": fresh_amqp_uri})
    container.start()
    body = '{"b": 1,  "a":"张三"}'.encode()  # spacing and key order a decoder would not keep
    with Connection(fresh_amqp_uri, transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(body, exchange=Exchange("probe.exchange", "topic", durable=True),
                                routing_key="inst.1234567890", headers={"x-sender": "4133010002"},
                                content_type="application/json", content_encoding="utf-8")
        conn.Producer().publish(b"\xff not json", exchange=Exchange("probe.exchange", "topic", durable=True),
                                routing_key="inst.1234567890", content_type="application/json",
                                content_encoding="utf-8")
        # Decoding by the encoding named and encoding again would add a BOM: the bytes must not be touched.
        conn.Producer().publish("{}".encode("utf-16-le"), exchange=Exchange("probe.exchange", "topic", durable=True),
                                routing_key="inst.1234567890", content_type="application/json",
                                content_encoding="utf-16")
    deadline = time.monotonic() + 15
    while len(RawProbe.calls) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    firsts = [c for c in RawProbe.calls if c[0] == body]
    assert [c[2] for c in firsts] == ["inst.1234567890"] * 2  # the retried copy came via the default exchange
    assert all(c[1] == {"x-sender": "4133010002"} for c in firsts)  # our retry headers are not passed on
    assert sorted(c[0] for c in RawProbe.calls if c[0] != body) == \
        ["{}".encode("utf-16-le")] * 2 + [b"\xff not json"] * 2
    assert ROUTING_HEADER.startswith("x-xueji-")


def test_the_service_consumes_its_inbox_and_answers_on_its_timer(
        db: Database, sim: PeerInstitution, fresh_amqp_uri: str, container_factory: Any) -> None:
    container = container_factory(TransferService, {"AMQP_URI": fresh_amqp_uri, "TRANSFER_DATABASE_URL": db.url})
    container.start()
    transfer_id = str(uuid.uuid4())
    forged = sim.forged(protocol.CANCEL, transfer_id, {"reason": "伪造"})
    sim.publish(forged)
    answer = sim.wait_ack(forged.message_id, timeout=20)  # received, refused, answered by the timer
    assert answer == {"acked_message_id": forged.message_id, "result": "rejected", "error": "bad_signature"}
    with entrypoint_hook(container, "interchange_problems", context_data={
            "xueji_caller": system_caller("tests").to_header()}) as problems:
        assert [(p["message_id"], p["error"]) for p in problems()["items"]] == [(forged.message_id, "bad_signature")]
    assert count(db, Transfer) == 0
