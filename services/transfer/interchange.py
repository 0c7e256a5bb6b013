"""The interchange transport (xj-transfer/1, ../shared/contracts/transfer-interchange.md).

Receiving (`receive_raw`, fed by the raw consumer on `transfer.inbox.<own>`): the message is
verified first (signature, schema, headers, recipient). A refused one changes nothing: it is kept
for inspection (`problems`) and, when a known peer sent it, answered with a signed `rejected` ack.
Otherwise it is recorded by `message_id` and applied by the workflow (`transfers.apply_incoming`)
in one transaction with its ack queued, so a repeat is answered `duplicate` and applied never twice.
An incoming ack settles the message it answers and tells the workflow (`transfers.on_acked`).

Sending (`send_due`, on a timer): our messages whose time has come (`outgoing.queue_message` wrote
them), signed with the newest key shared with the peer, published with publisher confirms, and
re-sent with backoff (`outgoing.resend_after`) until acked or cancelled. Acks go once. A broker that
does not confirm leaves the rest waiting for the next round.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Exchange
from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import ACADEMIC_AFFAIRS, IT_CENTRE, STUDENT_AFFAIRS, Caller
from services.common.db import Database
from services.common.entrypoints import RawQueue
from services.common.errors import Conflict, Invalid
from services.transfer import transfers
from services.transfer.adapters.orm import InterchangeMessage
from services.transfer.domain import protocol
from services.transfer.domain import workflow as wf
from services.transfer.outgoing import accepted_keys, own_code, queue_message, resend_after, signing_key
from services.transfer.roster_port import RosterPort

log = logging.getLogger(__name__)

# The ack of a refused message whose transfer_id cannot be read still needs a UUID there.
NO_TRANSFER = "00000000-0000-0000-0000-000000000000"
SEND_BATCH = 200
UNSETTLED = ("pending", "sent")
# Who looks at refused messages and pushes a re-send: the offices running transfers and IT.
OPERATORS = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, IT_CENTRE)


def inbox() -> RawQueue:
    """This institution's inbox: `transfer.inbox.<own>` bound to `transfer.interchange` with `inst.<own>`."""
    own = own_code()
    return RawQueue(protocol.EXCHANGE, protocol.routing_key(own), protocol.inbox_queue(own))


# ---- receiving -------------------------------------------------------------------------------


def receive_raw(db: Database, raw: bytes, headers: dict[str, Any], routing_key: str, roster: RosterPort,
                now: datetime | None = None) -> str:
    """Handle one received message; returns "accepted" | "duplicate" | "rejected" | "ignored"."""
    now = _utc(now or datetime.now(UTC))
    headers = dict(headers or {})
    with db.reading() as s:
        keys = accepted_keys(s)
    try:
        received = protocol.verify(raw, headers, routing_key, own=own_code(), keys=keys)
    except protocol.Refused as refused:
        return _refuse(db, raw, headers, refused, now, authentic=refused.error != protocol.BAD_SIGNATURE)
    body = received.body
    handle = _receive_ack if body.kind == protocol.ACK else _apply
    for attempt in range(2):
        try:
            return handle(db, raw, headers, received, roster, now)
        except protocol.Refused as refused:  # the workflow refused it: nothing of it was kept
            refused.answer_to, refused.message_id, refused.transfer_id = body.sender, body.message_id, body.transfer_id
            return _refuse(db, raw, headers, refused, now, authentic=True)
        except IntegrityError:
            # Another worker recorded the same message_id meanwhile: the next try finds it.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _apply(db: Database, raw: bytes, headers: dict[str, Any], received: protocol.Received, roster: RosterPort,
           now: datetime) -> str:
    body = received.body
    with db.transaction() as s:
        if _received_before(s, body.message_id):
            s.add(_incoming(raw, headers, body, "duplicate", now))
            _answer(s, body.sender, body.transfer_id, body.message_id, "duplicate", None, now)
            return "duplicate"
        s.add(_incoming(raw, headers, body, "applied", now, message_id=body.message_id))
        s.flush()  # the unique (direction, message_id) claims it before anything is applied
        transfers.apply_incoming(s, received, roster, now)
        _answer(s, body.sender, body.transfer_id, body.message_id, "accepted", None, now)
    return "accepted"


def _receive_ack(db: Database, raw: bytes, headers: dict[str, Any], received: protocol.Received,
                 roster: RosterPort, now: datetime) -> str:
    """An ack settles the message it answers (never answered itself)."""
    body, ack = received.body, received.payload
    assert isinstance(ack, protocol.AckPayload)
    with db.transaction() as s:
        if _received_before(s, body.message_id):
            s.add(_incoming(raw, headers, body, "duplicate", now))
            return "duplicate"
        row = _incoming(raw, headers, body, "applied", now, message_id=body.message_id)
        s.add(row)
        sent = s.scalars(select(InterchangeMessage).where(
            InterchangeMessage.direction == "out", InterchangeMessage.message_id == ack.acked_message_id)).first()
        if sent is None or sent.peer_code != body.sender or sent.kind == protocol.ACK:
            row.state, row.detail = "ignored", "应答的消息不是本校发给该单位的消息"
            return "ignored"
        if sent.state not in UNSETTLED:  # already settled (a second ack of a re-sent copy), or cancelled
            row.state, row.detail = "ignored", f"该消息已是“{sent.state}”状态"
            return "ignored"
        sent.state = "rejected" if ack.result == "rejected" else "acked"
        sent.error = ack.error
        sent.acked_at, sent.next_attempt_at = now, None
        s.flush()
        transfers.on_acked(s, sent, ack, roster, now)
    return "accepted"


def _refuse(db: Database, raw: bytes, headers: dict[str, Any], refused: protocol.Refused, now: datetime, *,
            authentic: bool) -> str:
    """Keep a refused message for inspection; answer a known sender (never an ack, never an unknown one)."""
    kind = _kind_of(raw)
    transfer_id = refused.transfer_id if refused.transfer_id and protocol.is_uuid(refused.transfer_id) else None
    sender = headers.get("x-sender")
    with db.transaction() as s:
        s.add(InterchangeMessage(
            direction="in", message_id=None, kind=kind, body=raw, headers=_json(headers), state="rejected",
            # Only a correctly signed message may put itself into a transfer's history.
            transfer_id=transfer_id if authentic else None,
            peer_code=sender[:16] if isinstance(sender, str) else None,
            error=refused.error, detail=refused.detail, attempts=0, created_at=now))
        if refused.answer_to and kind != protocol.ACK and protocol.is_uuid(refused.message_id or ""):
            _answer(s, refused.answer_to, transfer_id or NO_TRANSFER, refused.message_id or "", "rejected",
                    refused.error, now)
    log.warning("interchange message refused: %s %s", refused.error, refused.detail,
                extra={"fields": {"sender": str(sender), "message_id": refused.message_id}})
    return "rejected"


def _received_before(s: Session, message_id: str) -> bool:
    return bool(s.scalar(select(exists().where(InterchangeMessage.direction == "in",
                                               InterchangeMessage.message_id == message_id))))


def _incoming(raw: bytes, headers: dict[str, Any], body: protocol.Body, state: str, now: datetime, *,
              message_id: str | None = None) -> InterchangeMessage:
    """A received message kept with its transfer. Only the first copy holds the message_id
    (the unique key that makes a repeat a duplicate); repeats are kept too, without it."""
    return InterchangeMessage(direction="in", message_id=message_id, transfer_id=body.transfer_id, kind=body.kind,
                              peer_code=body.sender, body=raw, headers=_json(headers), state=state, attempts=0,
                              created_at=now)


def _answer(s: Session, peer: str, transfer_id: str, message_id: str, result: str, error: str | None,
            now: datetime) -> None:
    queue_message(s, peer_code=peer, kind=protocol.ACK, transfer_id=transfer_id, now=now,
                  payload={"acked_message_id": message_id, "result": result, "error": error})


def _kind_of(raw: bytes) -> str | None:
    try:
        kind = json.loads(raw).get("kind")
    except (ValueError, AttributeError):
        return None
    return kind if kind in protocol.KINDS else None


def _json(headers: dict[str, Any]) -> str:
    return json.dumps(headers, ensure_ascii=False, default=str)


# ---- sending ---------------------------------------------------------------------------------


def send_due(db: Database, publish: Callable[[protocol.Outgoing], None], now: datetime | None = None,
             limit: int = SEND_BATCH) -> int:
    """Publish up to `limit` due messages; returns how many the broker confirmed.

    PostgreSQL: claimed `FOR UPDATE SKIP LOCKED` (two instances never send the same row at once; a
    cancel waits for the round). SQLite (one writer): read, publish, then marked if still unsettled.
    """
    now = _utc(now or datetime.now(UTC))
    due = (select(InterchangeMessage)
           .where(InterchangeMessage.direction == "out", InterchangeMessage.state.in_(UNSETTLED),
                  InterchangeMessage.next_attempt_at <= now)
           .order_by(InterchangeMessage.id).limit(limit))
    if db.is_postgres:
        with db.transaction() as s:
            rows = list(s.scalars(due.with_for_update(skip_locked=True)))
            signed, unsigned = _sign(s, rows)
            published = _publish(publish, signed)
            _mark(dict(published), unsigned, {r.id: r for r in rows}, now)
            return len(published)
    with db.reading() as s:
        rows = list(s.scalars(due))
        signed, unsigned = _sign(s, rows)
    published = _publish(publish, signed)
    with db.transaction() as s:
        ids = [row_id for row_id, _ in published] + list(unsigned)
        fresh = {r.id: r for r in s.scalars(select(InterchangeMessage).where(InterchangeMessage.id.in_(ids))
                                            .where(InterchangeMessage.state.in_(UNSETTLED)))} if ids else {}
        _mark(dict(published), unsigned, fresh, now)
    return len(published)


def _sign(s: Session, rows: list[InterchangeMessage]) -> tuple[list[tuple[int, protocol.Outgoing]], dict[int, str]]:
    """Each row signed with the newest active key shared with its peer (the same body bytes every time)."""
    keys: dict[str, tuple[str, bytes] | str] = {}
    signed, unsigned = [], {}
    for row in rows:
        peer = row.peer_code or ""
        if peer not in keys:
            try:
                keys[peer] = signing_key(s, peer)
            except Conflict as exc:
                keys[peer] = str(exc)
        key = keys[peer]
        if isinstance(key, str):
            unsigned[row.id] = key
        else:
            signed.append((row.id, protocol.sign(row.body, key_id=key[0], key=key[1])))
    return signed, unsigned


def _publish(publish: Callable[[protocol.Outgoing], None],
             signed: list[tuple[int, protocol.Outgoing]]) -> list[tuple[int, protocol.Outgoing]]:
    done = []
    for row_id, out in signed:
        try:
            publish(out)
        except Exception as exc:  # noqa: BLE001 - broker down or not confirming: the rest wait
            log.warning("interchange publish failed, %s message(s) wait for the next round: %s",
                        len(signed) - len(done), exc)
            break
        done.append((row_id, out))
    return done


def _mark(published: dict[int, protocol.Outgoing], unsigned: dict[int, str], rows: dict[int, InterchangeMessage],
          now: datetime) -> None:
    for row_id, out in published.items():
        row = rows.get(row_id)
        if row is None:  # settled meanwhile (SQLite: an ack or a cancel came first)
            continue
        row.headers, row.last_sent_at, row.attempts = _json(out.headers), now, row.attempts + 1
        row.state, row.detail = "sent", None
        # An ack goes once; anything else comes round again unless acked before.
        row.next_attempt_at = None if row.kind == protocol.ACK else now + resend_after(row.attempts)
    for row_id, problem in unsigned.items():
        row = rows.get(row_id)
        if row is not None:
            row.detail, row.next_attempt_at = problem, now + resend_after(row.attempts + 1)


class BrokerPublisher:
    """`publish(outgoing)` for `send_due`: one kombu connection, publisher confirms, the contract's
    properties and headers; raises when the broker is away or does not confirm."""

    def __init__(self, uri: str, timeout: float = 10.0) -> None:
        self.uri = uri
        self.timeout = timeout
        self.exchange = Exchange(protocol.EXCHANGE, type="topic", durable=True)
        self._conn: Connection | None = None
        self._producer: Any = None

    def __call__(self, out: protocol.Outgoing) -> None:
        try:
            if self._producer is None:
                # One quick connection try: a broker that is down must not hold the send round.
                self._conn = Connection(self.uri, connect_timeout=5, transport_options={
                    "confirm_publish": True, "max_retries": 1, "interval_start": 0, "interval_step": 1,
                    "interval_max": 1})
                self._producer = self._conn.Producer()
            # priority=None: kombu would add a priority property the contract does not have.
            self._producer.publish(out.body, exchange=self.exchange, routing_key=out.routing_key,
                                   headers=dict(out.headers), declare=[self.exchange], content_encoding="utf-8",
                                   priority=None, timeout=self.timeout, **out.properties)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        conn, self._conn, self._producer = self._conn, None, None
        if conn is not None:
            try:
                conn.release()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass


# ---- operators -------------------------------------------------------------------------------


def problems(db: Database, caller: Caller, page: int = 1, per_page: int = 50) -> dict[str, Any]:
    """Refused incoming messages (forged, malformed, misaddressed, refused by the workflow), newest first."""
    caller.require_role(*OPERATORS)
    page, per_page = _page(page, per_page)
    refused = (InterchangeMessage.direction == "in", InterchangeMessage.state == "rejected")
    with db.reading() as s:
        total = s.scalar(select(func.count()).select_from(InterchangeMessage).where(*refused)) or 0
        rows = s.scalars(select(InterchangeMessage).where(*refused).order_by(InterchangeMessage.id.desc())
                         .offset((page - 1) * per_page).limit(per_page))
        items = [_problem(r) for r in rows]
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def _problem(row: InterchangeMessage) -> dict[str, Any]:
    headers = _loads(row.headers)
    body = _loads(row.body)
    message_id, _ = protocol._ids(row.body)
    return {"id": row.id, "received_at": _utc(row.created_at).isoformat(),
            "sender": _text(headers.get("x-sender") or body.get("sender")),
            "recipient": _text(headers.get("x-recipient") or body.get("recipient")),
            "kind": row.kind, "message_id": message_id, "transfer_id": row.transfer_id,
            "error": row.error, "detail": row.detail,
            "kind_label": wf.MESSAGE_KIND_LABELS.get(row.kind or "", row.kind or ""),
            "error_label": wf.MESSAGE_ERROR_LABELS.get(row.error or "", row.error or "")}


def resend_now(db: Database, caller: Caller, transfer_id: str = "", now: datetime | None = None) -> dict[str, int]:
    """Make unacked messages (of one transfer, or all) due now, e.g. after a peer came back."""
    caller.require_role(*OPERATORS)
    if transfer_id and not protocol.is_uuid(transfer_id):
        raise Invalid("转学编号格式不正确")
    now = _utc(now or datetime.now(UTC))
    query = (update(InterchangeMessage)
             .where(InterchangeMessage.direction == "out", InterchangeMessage.state.in_(UNSETTLED),
                    InterchangeMessage.next_attempt_at.is_not(None))
             .values(next_attempt_at=now))
    if transfer_id:
        query = query.where(InterchangeMessage.transfer_id == transfer_id)
    with db.transaction() as s:
        due = s.execute(query).rowcount or 0
        audit(s, caller, "interchange.resend_now", transfer_id or "*", None, {"due": due})
    return {"due": due}


def _page(page: Any, per_page: Any) -> tuple[int, int]:
    try:
        page, per_page = int(page), int(per_page)
    except (TypeError, ValueError):
        raise Invalid("分页参数不正确") from None
    return max(1, page), min(max(1, per_page), 200)


def _loads(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _utc(moment: datetime) -> datetime:
    """Times are stored in UTC; SQLite gives them back without an offset."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(value: Any) -> str | None:
    return value[:64] if isinstance(value, str) else None
