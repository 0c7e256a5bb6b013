"""The graduation clearance system's events, exactly as its contract defines them.

See ../shared/contracts/clearance-events.md: bodies are not our envelope; they are
validated here and turned into values the roster's use cases act on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from services.roster.domain.status import CLEARANCE_OUTCOMES

COMPLETED_KEY = "clearance.completed"
REVOKED_KEY = "clearance.revoked"


class ClearanceInvalid(ValueError):
    """A clearance event that does not meet the contract; kept for staff to see."""


class _Completed(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event_id: uuid.UUID
    occurred_at: AwareDatetime
    student_number: str = Field(min_length=1, max_length=32)
    national_id_number: str | None = None
    outcome: Literal["graduated", "completed", "attendance"]
    clearance_batch: str
    items: dict[str, Any] = Field(default_factory=dict)


class _Revoked(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event_id: uuid.UUID
    occurred_at: AwareDatetime
    student_number: str = Field(min_length=1, max_length=32)
    national_id_number: str | None = None
    clearance_batch: str
    reason: str
    revokes_event_id: uuid.UUID


@dataclass(frozen=True)
class ClearanceCompleted:
    event_id: str
    occurred_at: datetime
    student_number: str
    national_id_number: str | None
    outcome: str
    batch: str

    @property
    def new_status(self) -> str:
        return CLEARANCE_OUTCOMES[self.outcome]


@dataclass(frozen=True)
class ClearanceRevoked:
    event_id: str
    occurred_at: datetime
    student_number: str
    national_id_number: str | None
    reason: str
    revokes_event_id: str
    batch: str


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "离校事件格式不符合约定：" + "; ".join(parts)


def event_id_of(body: Any) -> str | None:
    """The event id of a body, if it has a readable one (even when the rest is invalid)."""
    if isinstance(body, dict):
        try:
            return str(uuid.UUID(str(body.get("event_id"))))
        except ValueError:
            return None
    return None


def parse(routing_key: str, body: Any) -> ClearanceCompleted | ClearanceRevoked:
    if not isinstance(body, dict):
        raise ClearanceInvalid("离校事件应为 JSON 对象")
    try:
        if routing_key == COMPLETED_KEY:
            c = _Completed.model_validate(body)
            return ClearanceCompleted(str(c.event_id), c.occurred_at, c.student_number,
                                      c.national_id_number, c.outcome, c.clearance_batch)
        if routing_key == REVOKED_KEY:
            r = _Revoked.model_validate(body)
            return ClearanceRevoked(str(r.event_id), r.occurred_at, r.student_number,
                                    r.national_id_number, r.reason, str(r.revokes_event_id),
                                    r.clearance_batch)
    except ValidationError as exc:
        raise ClearanceInvalid(_errors(exc)) from None
    raise ClearanceInvalid(f"未知的离校事件类型 {routing_key}")


def identity_mismatch(event_id_number: str | None, record_id_number: str | None) -> str | None:
    """The event names the student by number; a differing ID number means a wrong match."""
    if event_id_number and record_id_number and event_id_number.upper() != record_id_number.upper():
        return "离校事件中的身份证件号与学籍记录不一致"
    return None
