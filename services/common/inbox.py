"""Idempotent handling: an event's effect and its inbox record commit together."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from services.common.envelope import Envelope
from services.common.models import InboxRecord


def first_delivery(session: Session, envelope: Envelope, consumer: str) -> bool:
    """Record the event for `consumer` in this transaction.

    Returns False when it was already applied: the caller then does nothing. A
    concurrent duplicate (another instance, same event) fails on the primary key at
    flush or commit, the transaction rolls back, and the retry finds the record.
    """
    key = (str(envelope.event_id), consumer)
    if session.get(InboxRecord, key) is not None:
        return False
    session.add(
        InboxRecord(
            event_id=key[0],
            consumer=consumer,
            event_type=envelope.type,
            received_at=datetime.now(UTC),
        )
    )
    session.flush()
    return True
