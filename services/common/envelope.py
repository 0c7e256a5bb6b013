"""The event envelope every service publishes and accepts.

An envelope is validated when it is created (before it reaches the outbox) and again
when it is received; the payload is validated against the schema registered for its
(type, version) in `services.common.events`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from services.common.caller import Caller
from services.common.errors import InvalidEvent


class Actor(BaseModel):
    """Who caused the change: a user, a service's own job, or an outside system."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["user", "system", "external"]
    id: str = Field(min_length=1, max_length=64)
    name: str | None = None


def actor_of(caller: Caller) -> Actor:
    """The actor an event names for a caller: the system, or the user signed in."""
    return Actor(kind="system" if caller.is_system() else "user", id=caller.username)


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    type: str = Field(pattern=r"^[a-z_]+(\.[a-z_]+)+$")
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    source: str = Field(pattern=r"^[a-z_]+$")
    actor: Actor
    correlation_id: str | None = None
    payload: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def envelopes_in(body: Any) -> list[Any]:
    """The envelopes one message carries: itself, or a pack's (a JSON array, see `relay.packed`)."""
    return body if isinstance(body, list) else [body]


def _check_payload(envelope: Envelope) -> Envelope:
    from services.common.events import payload_model  # the registry imports this module

    model = payload_model(envelope.type, envelope.version)
    try:
        model.model_validate(envelope.payload)
    except ValidationError as exc:
        raise InvalidEvent(f"{envelope.type} v{envelope.version}: {exc}") from exc
    return envelope


def new_event(
    event_type: str,
    payload: BaseModel,
    *,
    source: str,
    actor: Actor,
    correlation_id: str | None = None,
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> Envelope:
    """Build and validate an envelope; the payload model fixes the version."""
    version = getattr(type(payload), "VERSION", 1)
    try:
        envelope = Envelope(
            event_id=event_id or uuid.uuid4(),
            type=event_type,
            version=version,
            occurred_at=occurred_at or datetime.now(UTC),
            source=source,
            actor=actor,
            correlation_id=correlation_id,
            payload=payload.model_dump(mode="json"),
        )
    except ValidationError as exc:
        raise InvalidEvent(str(exc)) from exc
    from services.common.events import payload_model  # the registry imports this module

    if type(payload) is payload_model(event_type, version):  # validated when made, and frozen
        return envelope
    return _check_payload(envelope)


def parse_envelope(body: Any) -> Envelope:
    """Validate a received message body; raises InvalidEvent (a poison message)."""
    if not isinstance(body, dict):
        raise InvalidEvent(f"event body must be a JSON object, got {type(body).__name__}")
    try:
        envelope = Envelope.model_validate(body)
    except ValidationError as exc:
        raise InvalidEvent(str(exc)) from exc
    return _check_payload(envelope)
