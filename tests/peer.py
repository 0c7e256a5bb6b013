"""A peer simulator: another institution on the interchange, written from the contract text only
(../shared/contracts/transfer-interchange.md), not from our transfer service's code.

It has its own 10-digit code, its own durable queue `transfer.inbox.<code>` bound with `inst.<code>`
on `transfer.interchange`, its own keys, and plays either side of a transfer: it sends
request / decision / record / cancel / ack messages, verifies and acks what it receives (accepted,
duplicate, or rejected with the contract's error), and can misbehave on purpose: forge a signature,
address a message to someone else, send a message twice or out of order, stop answering, or drop
off the network for a while (its queue unbound: what is published meanwhile never reaches it).

    peer = PeerInstitution(amqp_uri, "4133010002", partner="4142010001", keys={"k1": secret}).start()
    request = peer.request(transfer_id, student, reason="…")
    peer.wait_ack(request.message_id)
    peer.close()

Plain kombu; the consumer runs in a (green, under the tests' eventlet) thread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from kombu import Connection, Consumer, Exchange, Queue

PROTOCOL = "xj-transfer/1"
EXCHANGE = "transfer.interchange"
CST = timezone(timedelta(hours=8))


def canonical(value: Any) -> bytes:
    """The record's hashed form: UTF-8 JSON, sorted keys, separators `,` `:`, non-ASCII unescaped."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def hmac_signature(key: bytes, body: bytes) -> str:
    return "hmac-sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


@dataclass
class Wire:
    """A message as it goes on the wire: exact body bytes, routing key, properties, headers."""

    body: bytes
    routing_key: str
    headers: dict[str, str]

    @property
    def parsed(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]

    @property
    def message_id(self) -> str:
        return str(self.parsed["message_id"])

    @property
    def kind(self) -> str:
        return str(self.parsed["kind"])

    @property
    def properties(self) -> dict[str, Any]:
        return {"content_type": "application/json", "delivery_mode": 2, "message_id": self.message_id,
                "type": self.kind}


@dataclass
class Delivery:
    """A message the simulator received, and how it judged it."""

    raw: bytes
    headers: dict[str, Any]
    routing_key: str
    body: dict[str, Any] | None
    error: str | None  # the contract's ack error, None when it was fine
    duplicate: bool = False
    properties: dict[str, Any] = field(default_factory=dict)  # content_type, delivery_mode, message_id, type
    at: float = field(default_factory=time.monotonic)


class PeerInstitution:
    def __init__(self, amqp_uri: str, code: str, *, partner: str, keys: dict[str, bytes],
                 key_id: str | None = None) -> None:
        self.amqp_uri = amqp_uri
        self.code = code
        self.partner = partner
        self.keys = dict(keys)  # key id → key shared with the partner; every one verifies
        self.key_id = key_id or next(iter(keys))  # the one that signs
        self.exchange = Exchange(EXCHANGE, type="topic", durable=True)
        self.queue = Queue(f"transfer.inbox.{code}", exchange=self.exchange, routing_key=f"inst.{code}",
                           durable=True)
        self.received: list[Delivery] = []
        self.answering = True  # False: receives but sends no acks ("stops answering")
        # Answer a request as the outflow side would when all goes well: both stages, then the record.
        self.auto_outflow: Callable[[dict[str, Any]], None] | None = None
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._publisher: Connection | None = None
        self._producer: Any = None
        self._consumer_thread: threading.Thread | None = None
        self._consuming = False
        self._changed = threading.Condition(self._lock)

    # ---- life cycle ----------------------------------------------------------------------------
    def start(self) -> PeerInstitution:
        with Connection(self.amqp_uri) as conn:
            self.queue(conn.default_channel).declare()  # exchange, queue and binding
        self._start_consumer()
        return self

    def close(self) -> None:
        self._stop_consumer()
        with self._publish_lock:
            if self._publisher is not None:
                self._publisher.release()
                self._publisher = self._producer = None

    def disconnect(self) -> None:
        """Off the network: stop consuming and unbind the inbox, so what is published meanwhile is lost
        on the way (as when the link between two brokers is down); only a re-send gets through later."""
        self._stop_consumer()
        with Connection(self.amqp_uri) as conn:
            self.queue(conn.default_channel).unbind_from(self.exchange, routing_key=f"inst.{self.code}")

    def reconnect(self) -> None:
        with Connection(self.amqp_uri) as conn:
            self.queue(conn.default_channel).declare()
        self._start_consumer()

    def _start_consumer(self) -> None:
        self._consuming = True
        ready = threading.Event()
        self._consumer_thread = threading.Thread(target=self._consume, args=(ready,), daemon=True,
                                                 name=f"peer-{self.code}")
        self._consumer_thread.start()
        if not ready.wait(15):
            raise RuntimeError("peer consumer did not start")

    def _stop_consumer(self) -> None:
        self._consuming = False
        if self._consumer_thread is not None:
            self._consumer_thread.join(10)
            self._consumer_thread = None

    def _consume(self, ready: threading.Event) -> None:
        with Connection(self.amqp_uri) as conn:
            # on_message and no auto_decode: the body's bytes as received, never decoded and re-encoded.
            conn.default_channel.auto_decode = False
            with Consumer(conn.default_channel, queues=[self.queue], on_message=self._on_message,
                          prefetch_count=500):
                ready.set()
                while self._consuming:
                    try:
                        conn.drain_events(timeout=0.2)
                    except TimeoutError:
                        pass

    # ---- sending -------------------------------------------------------------------------------
    def message(self, kind: str, transfer_id: str, payload: dict[str, Any], *, recipient: str | None = None,
                message_id: str | None = None, key_id: str | None = None, key: bytes | None = None) -> Wire:
        """Build (not send) a message, signed with the current key unless another is given."""
        recipient = recipient or self.partner
        body = json.dumps({
            "protocol": PROTOCOL, "message_id": message_id or str(uuid.uuid4()), "kind": kind,
            "transfer_id": transfer_id, "sender": self.code, "recipient": recipient,
            "sent_at": datetime.now(CST).isoformat(timespec="seconds"), "payload": payload,
        }, ensure_ascii=False).encode("utf-8")
        key_id = key_id or self.key_id
        key = key if key is not None else self.keys[key_id]
        headers = {"x-protocol": PROTOCOL, "x-sender": self.code, "x-recipient": recipient, "x-key-id": key_id,
                   "x-signature": hmac_signature(key, body)}
        return Wire(body, f"inst.{recipient}", headers)

    def publish(self, *wires: Wire) -> None:
        """Publish with publisher confirms, in the order given (the same Wire twice = a duplicate)."""
        with self._publish_lock:
            for wire in wires:
                for attempt in range(2):
                    try:
                        if self._producer is None:
                            self._publisher = Connection(self.amqp_uri,
                                                         transport_options={"confirm_publish": True})
                            self._producer = self._publisher.Producer()
                        self._producer.publish(wire.body, exchange=self.exchange, routing_key=wire.routing_key,
                                               headers=dict(wire.headers), declare=[self.exchange],
                                               content_encoding="utf-8", priority=None, **wire.properties)
                        break
                    except Exception:
                        if self._publisher is not None:
                            self._publisher.release()
                        self._publisher = self._producer = None
                        if attempt:
                            raise

    def send(self, kind: str, transfer_id: str, payload: dict[str, Any], **kwargs: Any) -> Wire:
        wire = self.message(kind, transfer_id, payload, **kwargs)
        self.publish(wire)
        return wire

    def forged(self, kind: str, transfer_id: str, payload: dict[str, Any], **kwargs: Any) -> Wire:
        """Signed with a key the partner does not share (under our current key id): a forgery."""
        return self.message(kind, transfer_id, payload, key=b"forged-" + uuid.uuid4().bytes, **kwargs)

    # the contract's kinds
    def request(self, transfer_id: str, student: dict[str, Any], *, reason: str = "监护人工作调动",
                transfer_kind: str = "inter_province", authority: str = "330000", send: bool = True,
                **kwargs: Any) -> Wire:
        payload = {"student": student, "reason": reason, "transfer_kind": transfer_kind,
                   "inflow_approved_at": datetime.now(CST).isoformat(timespec="seconds"),
                   "inflow_authority": authority,
                   "evidence": [{"name": "转学申请表.pdf", "sha256": hashlib.sha256(b"application").hexdigest()}]}
        return self._out(send, "transfer.request", transfer_id, payload, **kwargs)

    def decision(self, transfer_id: str, stage: str, decision: str = "approved", *, reason: str | None = None,
                 deadline_passed: bool = False, send: bool = True, **kwargs: Any) -> Wire:
        payload = {"stage": stage, "decision": decision, "reason": reason,
                   "decided_at": datetime.now(CST).isoformat(timespec="seconds"), "deadline_passed": deadline_passed}
        return self._out(send, "transfer.decision", transfer_id, payload, **kwargs)

    def record(self, transfer_id: str, record: dict[str, Any], *, send: bool = True, sha256: str | None = None,
               **kwargs: Any) -> Wire:
        payload = {"record": record, "record_sha256": sha256 or hashlib.sha256(canonical(record)).hexdigest(),
                   "archived_at": datetime.now(CST).isoformat(timespec="seconds")}
        return self._out(send, "transfer.record", transfer_id, payload, **kwargs)

    def cancel(self, transfer_id: str, reason: str = "学生撤回申请", *, send: bool = True, **kwargs: Any) -> Wire:
        return self._out(send, "transfer.cancel", transfer_id, {"reason": reason}, **kwargs)

    def ack(self, transfer_id: str, acked_message_id: str, result: str = "accepted", error: str | None = None,
            *, send: bool = True, **kwargs: Any) -> Wire:
        payload = {"acked_message_id": acked_message_id, "result": result, "error": error}
        return self._out(send, "transfer.ack", transfer_id, payload, **kwargs)

    def _out(self, send: bool, kind: str, transfer_id: str, payload: dict[str, Any], **kwargs: Any) -> Wire:
        wire = self.message(kind, transfer_id, payload, **kwargs)
        if send:
            self.publish(wire)
        return wire

    @staticmethod
    def record_of(student: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """A record as an outflow institution sends it: register fields, status history, rewards and sanctions."""
        return {"name": student["name"], "gender": student["gender"], "birth_date": student["birth_date"],
                "id_type": student["id_type"], "id_number": student["id_number"],
                "national_id": student["id_number"], "national_student_id": student["national_student_id"],
                "status": "enrolled",
                "status_history": [{"kind": "enrol", "new_status": "enrolled", "effective_at": "2023-09-01"}],
                "rewards_and_sanctions": [], **extra}

    # ---- receiving -----------------------------------------------------------------------------
    def _on_message(self, message: Any) -> None:
        raw = message.body
        headers = dict(message.headers or {})
        delivery = Delivery(raw, headers, str(message.delivery_info.get("routing_key", "")), None, None,
                            properties={k: v for k, v in (message.properties or {}).items()
                                        if k != "application_headers"})
        delivery.body, delivery.error = self._check(raw, headers, delivery.routing_key)
        body = delivery.body
        with self._changed:
            if body is not None and delivery.error is None:
                delivery.duplicate = body["message_id"] in self._seen
                self._seen.add(body["message_id"])
            self.received.append(delivery)
            self._changed.notify_all()
        message.ack()
        if body is None or body.get("kind") == "transfer.ack" or not self.answering:
            return
        if delivery.error == "bad_signature" and headers.get("x-sender") != self.partner:
            return  # nobody we share a key with: not answered
        result = "rejected" if delivery.error else "duplicate" if delivery.duplicate else "accepted"
        self.ack(str(body.get("transfer_id")), str(body.get("message_id")), result, delivery.error)
        if (result == "accepted" and body["kind"] == "transfer.request" and self.auto_outflow is not None):
            self.auto_outflow(body)

    def _check(self, raw: bytes, headers: dict[str, Any], routing_key: str) -> tuple[dict[str, Any] | None, str | None]:
        """The contract's checks, in its words; returns (body if readable, error or None)."""
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                body = None
        except ValueError:
            body = None
        key = self.keys.get(str(headers.get("x-key-id"))) if headers.get("x-sender") == self.partner else None
        if key is None or not hmac.compare_digest(hmac_signature(key, raw), str(headers.get("x-signature"))):
            return body, "bad_signature"
        if body is None or body.get("protocol") != PROTOCOL or headers.get("x-protocol") != PROTOCOL:
            return body, "bad_schema"
        if body.get("sender") != headers.get("x-sender") or body.get("recipient") != headers.get("x-recipient") \
                or routing_key != f"inst.{body.get('recipient')}":
            return body, "bad_schema"
        if body.get("recipient") != self.code:
            return body, "wrong_recipient"
        if body.get("kind") == "transfer.record":
            payload = body.get("payload") or {}
            if hashlib.sha256(canonical(payload.get("record"))).hexdigest() != payload.get("record_sha256"):
                return body, "bad_schema"
        return body, None

    def messages(self, kind: str | None = None, transfer_id: str | None = None, *,
                 duplicates: bool = False) -> list[dict[str, Any]]:
        """Bodies of the well-signed messages received (first copies only, unless `duplicates`)."""
        with self._lock:
            return [d.body for d in self.received if d.body is not None and d.error is None
                    and (duplicates or not d.duplicate)
                    and (kind is None or d.body.get("kind") == kind)
                    and (transfer_id is None or d.body.get("transfer_id") == transfer_id)]

    def wait(self, kind: str, transfer_id: str | None = None, count: int = 1, timeout: float = 30,
             where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """The first `count` received messages of `kind` (and transfer, and matching `where`)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [b for d in self.received if (b := d.body) is not None and d.error is None and not d.duplicate
                         and b.get("kind") == kind and (transfer_id is None or b.get("transfer_id") == transfer_id)
                         and (where is None or where(b))]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"peer {self.code}: {count} × {kind} for {transfer_id} not received in "
                                         f"{timeout}s (got {len(found)}; all kinds: "
                                         f"{[d.body.get('kind') if d.body else None for d in self.received][-20:]})")
                self._changed.wait(min(left, 0.5))

    def acks_for(self, message_id: str) -> list[dict[str, Any]]:
        """Payloads of the acks received for one of our messages (one per copy the partner got)."""
        return [b["payload"] for b in self.messages("transfer.ack", duplicates=True)
                if b["payload"].get("acked_message_id") == message_id]

    def wait_ack(self, message_id: str, timeout: float = 30) -> dict[str, Any]:
        body = self.wait("transfer.ack", timeout=timeout,
                         where=lambda b: b["payload"].get("acked_message_id") == message_id)[0]
        return body["payload"]  # type: ignore[no-any-return]
