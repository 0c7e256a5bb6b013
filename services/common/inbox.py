"""Idempotent handling: an event's effect and its inbox record commit together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import metrics
from services.common.bulk import insert_rows
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
        metrics.duplicate(consumer)
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


def first_deliveries(session: Session, envelopes: Sequence[Envelope], consumer: str) -> list[Envelope]:
    """`first_delivery` for a batch, with one query: the envelopes not yet applied, in order.

    A repeat inside the batch counts as already applied. The records are written at once
    (`bulk.insert_rows`).
    """
    ids = [str(e.event_id) for e in envelopes]
    seen = set(session.scalars(select(InboxRecord.event_id).where(
        InboxRecord.consumer == consumer, InboxRecord.event_id.in_(ids))))
    now = datetime.now(UTC)
    fresh = []
    records = []
    for envelope, event_id in zip(envelopes, ids, strict=True):
        if event_id in seen:
            continue
        seen.add(event_id)
        records.append({"event_id": event_id, "consumer": consumer, "event_type": envelope.type, "received_at": now})
        fresh.append(envelope)
    # One statement for the batch (a concurrent duplicate fails it on the primary key).
    insert_rows(session, InboxRecord.__table__, records)
    if len(fresh) < len(envelopes):
        metrics.duplicate(consumer, len(envelopes) - len(fresh))
    return fresh
