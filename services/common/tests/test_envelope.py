import uuid
from datetime import datetime

import pytest

from services.common.envelope import Actor, new_event, parse_envelope
from services.common.errors import InvalidEvent
from services.common.events import StudentStatusChanged

ACTOR = Actor(kind="user", id="1000001")


def status_payload(**overrides: object) -> StudentStatusChanged:
    data = {"student_number": "202301010101", "change_id": 1, "old_status": "enrolled",
            "new_status": "graduated", "left": True, "reason": "r",
            "effective_at": datetime.fromisoformat("2027-06-28T10:15:00+08:00")}
    data.update(overrides)
    return StudentStatusChanged(**data)  # type: ignore[arg-type]


def test_round_trip() -> None:
    env = new_event("student.status_changed", status_payload(), source="roster", actor=ACTOR,
                    correlation_id="abc")
    wire = env.to_wire()
    assert set(wire) == {"event_id", "type", "version", "occurred_at", "source", "actor",
                         "correlation_id", "payload"}
    back = parse_envelope(wire)
    assert back == env and back.version == 1


def test_receipt_validates_the_payload_schema() -> None:
    wire = new_event("student.status_changed", status_payload(), source="roster", actor=ACTOR).to_wire()
    wire["payload"]["left"] = "maybe"
    with pytest.raises(InvalidEvent, match="student.status_changed"):
        parse_envelope(wire)


@pytest.mark.parametrize("field,value", [
    ("event_id", "nope"), ("occurred_at", "2027-06-28T10:15:00"), ("type", "Bad Type"),
    ("version", 0), ("source", ""),
])
def test_receipt_validates_the_envelope(field: str, value: object) -> None:
    wire = new_event("student.status_changed", status_payload(), source="roster", actor=ACTOR).to_wire()
    wire[field] = value
    with pytest.raises(InvalidEvent):
        parse_envelope(wire)


def test_unknown_type_or_version_is_refused() -> None:
    wire = new_event("student.status_changed", status_payload(), source="roster", actor=ACTOR).to_wire()
    wire["version"] = 9
    with pytest.raises(InvalidEvent, match="unknown event type"):
        parse_envelope(wire)
    with pytest.raises(InvalidEvent):
        parse_envelope(["not", "an", "object"])


def test_publish_side_validation() -> None:
    with pytest.raises(InvalidEvent):
        new_event("Student Registered", status_payload(), source="roster", actor=ACTOR)
    with pytest.raises(InvalidEvent, match="unknown event type"):
        new_event("student.renamed", status_payload(), source="roster", actor=ACTOR)


def test_event_ids_are_unique() -> None:
    ids = {new_event("student.status_changed", status_payload(), source="roster", actor=ACTOR).event_id
           for _ in range(100)}
    assert len(ids) == 100 and all(isinstance(i, uuid.UUID) for i in ids)
