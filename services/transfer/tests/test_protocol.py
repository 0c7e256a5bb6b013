"""xj-transfer/1 in plain code (services/transfer/domain/protocol.py), pinned to the contract's text:
body and headers, HMAC-SHA256 over the exact body bytes, every refusal, the record's canonical hash."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from services.transfer.domain import protocol

US, PEER, OTHER = "4142010001", "4133010002", "4111010003"
KEY, OLD_KEY, OTHER_KEY = b"k" * 32, b"o" * 32, b"x" * 32
KEYS = {(PEER, "2026-01"): KEY, (PEER, "2025-01"): OLD_KEY, (OTHER, "k1"): OTHER_KEY}
CST = timezone(timedelta(hours=8))
SENT_AT = datetime(2026, 9, 10, 16, 0, tzinfo=CST)
TRANSFER = "6f1c2a9e-3b7d-4c11-9a55-0d2e8f1b7c40"
DECISION = {"stage": "outflow_school", "decision": "approved", "reason": None,
            "decided_at": "2026-09-10T16:00:00+08:00", "deadline_passed": False}
RECORD = {"student_number": "202301010105", "name": "张三", "status_history": [{"status": "在读"}],
          "rewards": [], "sanctions": []}


def body(kind: str = protocol.DECISION, payload: dict[str, Any] | None = None, *, sender: str = PEER,
         recipient: str = US) -> bytes:
    return protocol.build_body(kind=kind, transfer_id=TRANSFER, sender=sender, recipient=recipient,
                               sent_at=SENT_AT, payload=DECISION if payload is None else payload)


def signed(raw: bytes, key_id: str = "2026-01", key: bytes = KEY) -> protocol.Outgoing:
    return protocol.sign(raw, key_id=key_id, key=key)


def verify(raw: bytes, headers: dict[str, Any], routing: str | None = None) -> protocol.Received:
    return protocol.verify(raw, headers, routing or protocol.routing_key(US), own=US, keys=KEYS)


def refused(raw: bytes, headers: dict[str, Any], routing: str | None = None) -> protocol.Refused:
    with pytest.raises(protocol.Refused) as caught:
        verify(raw, headers, routing)
    return caught.value


def resigned(parsed: dict[str, Any], *, key: bytes = KEY, **header_changes: str) -> tuple[bytes, dict[str, Any]]:
    """A body edited as a peer might get it wrong, correctly signed, headers as given."""
    raw = json.dumps(parsed, ensure_ascii=False).encode()
    headers = {**signed(body()).headers, **header_changes}
    headers["x-signature"] = "hmac-sha256=" + hmac.new(key, raw, hashlib.sha256).hexdigest()
    return raw, headers


# ---- the record's canonical form ---------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8_with_chinese_unescaped() -> None:
    value = {"b": [1, {"d": None, "c": True}], "a": "张三", "e": 1.5}
    assert protocol.canonical_json(value) == '{"a":"张三","b":[1,{"c":true,"d":null}],"e":1.5}'.encode()


def test_record_hash_is_sha256_of_the_canonical_bytes() -> None:
    expected = ('{"name":"张三","rewards":[],"sanctions":[],"status_history":[{"status":"在读"}],'
                '"student_number":"202301010105"}').encode()
    assert protocol.record_sha256(RECORD) == hashlib.sha256(expected).hexdigest()
    # Key order and whitespace of the sender's serialisation do not matter, the content does.
    assert protocol.record_sha256(json.loads(json.dumps(RECORD, indent=2, sort_keys=False))) == \
        protocol.record_sha256(RECORD)
    assert protocol.record_sha256({**RECORD, "name": "张 三"}) != protocol.record_sha256(RECORD)


# ---- building and signing ----------------------------------------------------------------------


def test_a_signed_message_has_the_contracts_properties_headers_and_hmac() -> None:
    raw = body()
    out = signed(raw)
    parsed = json.loads(raw)
    assert set(parsed) == {"protocol", "message_id", "kind", "transfer_id", "sender", "recipient", "sent_at",
                           "payload"}
    assert (parsed["protocol"], parsed["kind"], parsed["sender"], parsed["recipient"]) == \
        ("xj-transfer/1", "transfer.decision", PEER, US)
    assert datetime.fromisoformat(parsed["sent_at"]) == SENT_AT and parsed["sent_at"].endswith("+08:00")
    assert str(uuid.UUID(parsed["message_id"])) == parsed["message_id"]
    assert (out.message_id, out.kind, out.routing_key, out.body) == \
        (parsed["message_id"], "transfer.decision", f"inst.{US}", raw)
    assert out.properties == {"content_type": "application/json", "delivery_mode": 2,
                              "message_id": parsed["message_id"], "type": "transfer.decision"}
    assert out.headers == {"x-protocol": "xj-transfer/1", "x-sender": PEER, "x-recipient": US,
                           "x-key-id": "2026-01",
                           "x-signature": "hmac-sha256=" + hmac.new(KEY, raw, hashlib.sha256).hexdigest()}
    assert protocol.inbox_queue(US) == f"transfer.inbox.{US}"


def test_building_checks_the_payload_against_its_kind() -> None:
    with pytest.raises(ValidationError):
        body(payload={**DECISION, "stage": "inflow_school"})
    with pytest.raises(ValidationError):
        body(protocol.CANCEL, {"reason": ""})
    assert json.loads(body(protocol.CANCEL, {"reason": "学生撤回申请"}))["payload"] == {"reason": "学生撤回申请"}


def test_re_signing_with_a_newer_key_keeps_the_body() -> None:
    raw = body()
    old, new = signed(raw, "2025-01", OLD_KEY), signed(raw, "2026-01", KEY)
    assert old.body == new.body and old.message_id == new.message_id
    assert old.headers["x-signature"] != new.headers["x-signature"]


# ---- verifying -----------------------------------------------------------------------------------


def test_a_correct_message_verifies_with_its_payload() -> None:
    out = signed(body())
    received = verify(out.body, out.headers)
    assert received.body.message_id == out.message_id and received.body.transfer_id == TRANSFER
    assert isinstance(received.payload, protocol.DecisionPayload)
    assert (received.payload.stage, received.payload.decision) == ("outflow_school", "approved")


def test_every_active_key_verifies_during_a_rotation_and_a_retired_one_does_not() -> None:
    raw = body()
    verify(raw, signed(raw, "2025-01", OLD_KEY).headers)
    verify(raw, signed(raw, "2026-01", KEY).headers)
    retired = {k: v for k, v in KEYS.items() if k != (PEER, "2025-01")}
    with pytest.raises(protocol.Refused) as caught:
        protocol.verify(raw, signed(raw, "2025-01", OLD_KEY).headers, f"inst.{US}", own=US, keys=retired)
    assert caught.value.error == protocol.BAD_SIGNATURE


def test_a_missing_signature_is_refused_and_answered_to_the_known_sender() -> None:
    out = signed(body())
    headers = {k: v for k, v in out.headers.items() if k != "x-signature"}
    err = refused(out.body, headers)
    assert (err.error, err.answer_to, err.message_id, err.transfer_id) == \
        (protocol.BAD_SIGNATURE, PEER, out.message_id, TRANSFER)


def test_a_wrong_signature_is_refused() -> None:
    out = signed(body(), key=OTHER_KEY)  # the right key id, the wrong key: a forgery
    assert refused(out.body, out.headers).error == protocol.BAD_SIGNATURE
    garbled = {**signed(body()).headers, "x-signature": "sha1=abc"}
    assert refused(out.body, garbled).error == protocol.BAD_SIGNATURE


def test_a_body_changed_after_signing_is_refused() -> None:
    out = signed(body())
    tampered = out.body.replace(b'"approved"', b'"rejected"')
    assert tampered != out.body
    assert refused(tampered, out.headers).error == protocol.BAD_SIGNATURE
    # Re-serialising the same JSON (other spacing) also breaks it: the HMAC is over the exact bytes.
    respaced = json.dumps(json.loads(out.body), ensure_ascii=False, indent=1).encode()
    assert refused(respaced, out.headers).error == protocol.BAD_SIGNATURE


def test_an_unknown_key_id_is_refused() -> None:
    out = signed(body(), key_id="2099-01")
    err = refused(out.body, out.headers)
    assert (err.error, err.answer_to) == (protocol.BAD_SIGNATURE, PEER)
    assert "2099-01" in err.detail


def test_an_unknown_sender_is_refused_and_not_answered() -> None:
    stranger = "4199010009"
    out = signed(body(sender=stranger), key_id="k", key=b"s" * 32)
    err = refused(out.body, out.headers)
    assert (err.error, err.answer_to, err.message_id) == (protocol.BAD_SIGNATURE, None, out.message_id)


def test_a_sender_that_does_not_match_its_header_is_bad_schema() -> None:
    # Signed with PEER's key under x-sender PEER, but the body claims to come from OTHER.
    raw, headers = resigned(json.loads(body(sender=OTHER)))
    err = refused(raw, headers)
    assert (err.error, err.answer_to) == (protocol.BAD_SCHEMA, PEER)
    assert "sender" in err.detail


def test_a_recipient_that_does_not_match_header_or_routing_key_is_bad_schema() -> None:
    raw, headers = resigned(json.loads(body()), **{"x-recipient": OTHER})
    assert refused(raw, headers).error == protocol.BAD_SCHEMA
    out = signed(body())
    assert refused(out.body, out.headers, routing=f"inst.{OTHER}").error == protocol.BAD_SCHEMA


def test_a_wrong_x_protocol_header_is_bad_schema() -> None:
    raw, headers = resigned(json.loads(body()), **{"x-protocol": "xj-transfer/2"})
    assert refused(raw, headers).error == protocol.BAD_SCHEMA


def test_a_message_for_another_institution_is_wrong_recipient() -> None:
    out = signed(body(recipient=OTHER))  # consistent everywhere, just not for us
    err = refused(out.body, out.headers, routing=f"inst.{OTHER}")
    assert (err.error, err.answer_to, err.message_id) == (protocol.WRONG_RECIPIENT, PEER, out.message_id)


@pytest.mark.parametrize("change", [
    {"payload": {**DECISION, "decision": "maybe"}},
    {"payload": {"stage": "outflow_school"}},
    {"kind": "transfer.appeal"},
    {"protocol": "xj-transfer/2"},
    {"message_id": "not-a-uuid"},
    {"transfer_id": "T-1"},
    {"sender": "41420100"},
    {"sent_at": "yesterday"},
])
def test_a_body_against_the_schema_is_bad_schema(change: dict[str, Any]) -> None:
    raw, headers = resigned({**json.loads(body()), **change})
    err = refused(raw, headers)
    assert (err.error, err.answer_to) == (protocol.BAD_SCHEMA, PEER)


def test_a_signed_body_that_is_not_json_is_bad_schema_without_ids() -> None:
    raw = "不是 JSON".encode()
    headers = {**signed(body()).headers, "x-signature": protocol.signature(KEY, raw)}
    err = refused(raw, headers)
    assert (err.error, err.message_id, err.transfer_id) == (protocol.BAD_SCHEMA, None, None)


def test_a_record_whose_hash_does_not_match_is_bad_schema() -> None:
    payload = {"record": RECORD, "record_sha256": protocol.record_sha256(RECORD),
               "archived_at": "2026-09-20T10:00:00+08:00"}
    good = signed(body(protocol.RECORD, payload))
    assert verify(good.body, good.headers).payload.record == RECORD  # type: ignore[attr-defined]
    bad = signed(body(protocol.RECORD, {**payload, "record": {**RECORD, "name": "李四"}}))
    err = refused(bad.body, bad.headers)
    assert (err.error, err.detail) == (protocol.BAD_SCHEMA, "record_sha256 与档案内容不符")


def test_an_ack_verifies_with_its_result() -> None:
    out = signed(body(protocol.ACK, {"acked_message_id": str(uuid.uuid4()), "result": "rejected",
                                     "error": "invalid_state"}))
    payload = verify(out.body, out.headers).payload
    assert isinstance(payload, protocol.AckPayload) and (payload.result, payload.error) == ("rejected",
                                                                                             "invalid_state")
    raw, headers = resigned({**json.loads(out.body), "payload": {"acked_message_id": "x", "result": "rejected",
                                                                 "error": "tired"}})
    assert refused(raw, headers).error == protocol.BAD_SCHEMA
