"""The transfer interchange between institutions, xj-transfer/1 (../shared/contracts/transfer-interchange.md).

Plain code: building a message (exact body bytes + properties + headers), signing and verifying it
(HMAC-SHA256 over the exact body bytes with the key two institutions share), checking a received
body against its headers and its kind's schema, and the record's canonical hash. No broker, no
database: the transport and the use cases call these.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PROTOCOL = "xj-transfer/1"
EXCHANGE = "transfer.interchange"
INSTITUTION = r"^\d{10}$"
UUID = r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"  # message_id, transfer_id (the contract)

REQUEST = "transfer.request"
DECISION = "transfer.decision"
RECORD = "transfer.record"
ACK = "transfer.ack"
CANCEL = "transfer.cancel"
KINDS = (REQUEST, DECISION, RECORD, ACK, CANCEL)

# Ack errors (the contract's list).
BAD_SIGNATURE = "bad_signature"
WRONG_RECIPIENT = "wrong_recipient"
BAD_SCHEMA = "bad_schema"
UNKNOWN_TRANSFER = "unknown_transfer"
INVALID_STATE = "invalid_state"
ERRORS = (BAD_SIGNATURE, WRONG_RECIPIENT, BAD_SCHEMA, UNKNOWN_TRANSFER, INVALID_STATE)

OUTFLOW_SCHOOL = "outflow_school"
OUTFLOW_AUTHORITY = "outflow_authority"
STUDENT_MISMATCH = "student_mismatch"


def routing_key(institution: str) -> str:
    return f"inst.{institution}"


def inbox_queue(institution: str) -> str:
    return f"transfer.inbox.{institution}"


# ---- payloads by kind ------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")  # later minor versions may add fields


class StudentIdentity(_Model):
    national_student_id: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=64)
    gender: str = Field(pattern=r"^[12]$")
    birth_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    id_type: str = Field(min_length=1, max_length=2)
    id_number: str = Field(min_length=1, max_length=32)
    outflow_student_number: str | None = Field(default=None, max_length=20)


class EvidenceRef(_Model):
    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class RequestPayload(_Model):
    student: StudentIdentity
    reason: str = Field(min_length=1)
    transfer_kind: Literal["intra_province", "inter_province"]
    inflow_approved_at: datetime
    inflow_authority: str = Field(min_length=1, max_length=16)
    evidence: list[EvidenceRef] = []


class DecisionPayload(_Model):
    stage: Literal["outflow_school", "outflow_authority"]
    decision: Literal["approved", "rejected"]
    reason: str | None = None
    decided_at: datetime
    deadline_passed: bool = False


class RecordPayload(_Model):
    record: dict[str, Any]
    record_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    archived_at: datetime


class CancelPayload(_Model):
    reason: str = Field(min_length=1)


class AckPayload(_Model):
    acked_message_id: str
    result: Literal["accepted", "duplicate", "rejected"]
    error: Literal["bad_signature", "wrong_recipient", "bad_schema", "unknown_transfer", "invalid_state"] | None = None


PAYLOADS: dict[str, type[_Model]] = {
    REQUEST: RequestPayload, DECISION: DecisionPayload, RECORD: RecordPayload, CANCEL: CancelPayload,
    ACK: AckPayload,
}


class Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    protocol: Literal["xj-transfer/1"]
    message_id: str = Field(pattern=UUID)
    kind: Literal["transfer.request", "transfer.decision", "transfer.record", "transfer.ack", "transfer.cancel"]
    transfer_id: str = Field(pattern=UUID)
    sender: str = Field(pattern=INSTITUTION)
    recipient: str = Field(pattern=INSTITUTION)
    sent_at: datetime
    payload: dict[str, Any]


# ---- the record's hash -----------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """Sorted keys, separators `,` and `:`, non-ASCII unescaped, UTF-8 (the contract's form)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_sha256(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(record)).hexdigest()


# ---- signing ---------------------------------------------------------------------------------


def signature(key: bytes, body: bytes) -> str:
    return "hmac-sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def signature_matches(key: bytes, body: bytes, header: Any) -> bool:
    return isinstance(header, str) and hmac.compare_digest(signature(key, body), header)


@dataclass(frozen=True)
class Outgoing:
    """A message ready to publish: the exact body bytes and its AMQP properties and headers."""

    message_id: str
    kind: str
    routing_key: str
    body: bytes
    headers: dict[str, str]

    @property
    def properties(self) -> dict[str, Any]:
        return {"content_type": "application/json", "delivery_mode": 2, "message_id": self.message_id,
                "type": self.kind}


def build_body(*, kind: str, transfer_id: str, sender: str, recipient: str, sent_at: datetime,
               payload: dict[str, Any], message_id: str | None = None) -> bytes:
    """The body bytes of a new message (payload checked against its kind's schema first)."""
    PAYLOADS[kind].model_validate(payload)
    body = {"protocol": PROTOCOL, "message_id": message_id or str(uuid.uuid4()), "kind": kind,
            "transfer_id": transfer_id, "sender": sender, "recipient": recipient,
            "sent_at": sent_at.isoformat(), "payload": payload}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def sign(body: bytes, *, key_id: str, key: bytes) -> Outgoing:
    """Headers for `body` signed with `key` (re-signing a re-sent message with a newer key is fine:
    the body bytes, and so the message_id, stay the same)."""
    parsed = json.loads(body)
    headers = {"x-protocol": PROTOCOL, "x-sender": parsed["sender"], "x-recipient": parsed["recipient"],
               "x-key-id": key_id, "x-signature": signature(key, body)}
    return Outgoing(parsed["message_id"], parsed["kind"], routing_key(parsed["recipient"]), body, headers)


# ---- receiving -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """A message that passed every check: who sent it, its body and its kind's payload."""

    body: Body
    payload: _Model


class Refused(Exception):
    """A message that changes nothing: `error` is the ack's error; `answer_to` the peer to answer,
    when `x-sender` names a known peer (else nobody: there is no key to sign an answer with)."""

    def __init__(self, error: str, detail: str, answer_to: str | None = None, message_id: str | None = None,
                 transfer_id: str | None = None) -> None:
        super().__init__(f"{error}: {detail}")
        self.error, self.detail, self.answer_to = error, detail, answer_to
        self.message_id, self.transfer_id = message_id, transfer_id


def verify(raw: bytes, headers: dict[str, Any], routing: str, *, own: str,
           keys: dict[tuple[str, str], bytes]) -> Received:
    """Check a received message in the contract's order; raises Refused.

    `keys`: (peer institution code, key id) → shared key, the keys currently accepted.
    """
    sender = headers.get("x-sender")
    known = {peer for peer, _ in keys}
    answer_to = sender if isinstance(sender, str) and sender in known else None
    ids = _ids(raw)
    key = keys.get((str(sender), str(headers.get("x-key-id"))))
    if key is None:
        raise Refused(BAD_SIGNATURE, f"未知的密钥编号 {headers.get('x-key-id')!r}", answer_to, *ids)
    if not signature_matches(key, raw, headers.get("x-signature")):
        raise Refused(BAD_SIGNATURE, "签名不正确", answer_to, *ids)
    try:
        body = Body.model_validate_json(raw)
        payload = PAYLOADS[body.kind].model_validate(body.payload)
    except (ValidationError, ValueError) as exc:
        raise Refused(BAD_SCHEMA, f"消息格式不符合协议：{_first_error(exc)}", answer_to, *ids) from None
    if headers.get("x-protocol") != PROTOCOL:
        raise Refused(BAD_SCHEMA, "x-protocol 头不是 xj-transfer/1", answer_to, *ids)
    if body.sender != sender:
        raise Refused(BAD_SCHEMA, "消息体的 sender 与 x-sender 不一致", answer_to, *ids)
    if body.recipient != headers.get("x-recipient") or routing != routing_key(body.recipient):
        raise Refused(BAD_SCHEMA, "消息体的 recipient 与消息头或路由键不一致", answer_to, *ids)
    if body.recipient != own:
        raise Refused(WRONG_RECIPIENT, f"收件单位 {body.recipient} 不是本校 {own}", answer_to, *ids)
    if body.kind == RECORD:
        record = payload  # type: ignore[assignment]
        if record_sha256(record.record) != record.record_sha256:  # type: ignore[attr-defined]
            raise Refused(BAD_SCHEMA, "record_sha256 与档案内容不符", answer_to, *ids)
    return Received(body, payload)


def _ids(raw: bytes) -> tuple[str | None, str | None]:
    """message_id and transfer_id of a body, as far as it can be read (for the inspection list)."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None, None
    if not isinstance(parsed, dict):
        return None, None
    message_id, transfer_id = parsed.get("message_id"), parsed.get("transfer_id")
    return (message_id if isinstance(message_id, str) else None,
            transfer_id if isinstance(transfer_id, str) else None)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)


def is_uuid(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", text or ""))
