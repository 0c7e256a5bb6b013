"""Packs: the relay publishes consecutive events of a high-volume type several to a message."""

from __future__ import annotations

import json
from typing import Any

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from services.catalog import all_service_classes
from services.common.entrypoints import BatchEventHandler, ReliableEventHandler
from services.common.events import PACKED_TYPES
from services.common.relay import packed
from services.common.tests.test_outbox_relay import envelope

STATUS = "student.status_changed"


def wire(n: int, event_type: str = STATUS, exchange: str = "roster.events") -> tuple[str, str, str, str]:
    body = envelope(n).to_wire() | {"type": event_type}
    return (exchange, event_type, body["event_id"], json.dumps(body))


def test_consecutive_events_of_a_packed_type_share_a_message_in_order() -> None:
    wires = [wire(n) for n in range(1, 8)]
    messages = packed(wires, 3)
    assert [len(json.loads(m[3])) for m in messages[:2]] == [3, 3]  # the seventh goes alone
    assert [m[2] for m in messages] == [wires[0][2], wires[3][2], wires[6][2]]  # message id: the first event's
    flattened = [e for m in messages for e in (json.loads(m[3]) if m[3].startswith("[") else [json.loads(m[3])])]
    assert len(messages) == 3 and isinstance(json.loads(messages[2][3]), dict)
    assert [e["event_id"] for e in flattened] == [w[2] for w in wires]


def test_other_types_and_exchanges_break_a_run_and_go_as_they_are() -> None:
    wires = [wire(1), wire(2), wire(3, "student.registered"), wire(4), wire(5, exchange="other.events"), wire(6)]
    messages = packed(wires, 50)
    assert [(m[0], m[1]) for m in messages] == [
        ("roster.events", STATUS), ("roster.events", "student.registered"), ("roster.events", STATUS),
        ("other.events", STATUS), ("roster.events", STATUS)]
    assert isinstance(json.loads(messages[0][3]), list) and len(json.loads(messages[0][3])) == 2
    assert all(isinstance(json.loads(m[3]), dict) for m in messages[1:])
    assert packed(wires, 1) == wires  # XUEJI_PACK_SIZE=1 turns packing off


def test_every_consumer_of_a_packed_type_takes_batches() -> None:
    """A single-event handler would split every pack again (one republish per event): only types
    whose consumers are all batch handlers are packed."""
    consumers: dict[str, list[Any]] = {t: [] for t in PACKED_TYPES}
    for cls in all_service_classes():
        for attr in vars(cls):
            for ep in getattr(getattr(cls, attr), ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(ep, ReliableEventHandler) and ep.event_type in PACKED_TYPES:
                    consumers[ep.event_type].append((cls.name, attr, ep))
    assert consumers["student.status_changed"]
    for found in consumers.values():
        assert all(isinstance(ep, BatchEventHandler) for *_, ep in found), found
