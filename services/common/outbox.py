"""Recording events in the outbox, inside the caller's transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.common.bulk import insert_rows
from services.common.envelope import Envelope
from services.common.models import OutboxMessage


def exchange_for(source: str) -> str:
    """Events of a source go to its topic exchange, as nameko names them."""
    return f"{source}.events"


# Outbox rows of the open transaction, written in one INSERT just before it commits: a batch's
# events cost one statement instead of an ORM object each.
_PENDING = "outbox_pending"


def record_event(session: Session, envelope: Envelope) -> None:
    """Add an (already validated) envelope to the outbox of this transaction; it is written with
    the transaction's commit (rolled back with it)."""
    session.info.setdefault(_PENDING, []).append({
        "event_id": str(envelope.event_id),
        "event_type": envelope.type,
        "exchange": exchange_for(envelope.source),
        "body": envelope.model_dump_json(),  # = json.dumps(to_wire()), compact, in pydantic's serializer
        "created_at": datetime.now(UTC),
    })


def write_recorded(session: Session) -> None:
    """Write the events recorded so far in this transaction now rather than at its commit: a long batch
    writes them part by part (inside `bulk.copying_behind`, while it makes its next part)."""
    rows = session.info.pop(_PENDING, None)
    if rows:
        insert_rows(session, OutboxMessage.__table__, rows)
        session.info["outbox_written"] = True


@sa_event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    write_recorded(session)


def unpublished_count(session: Session) -> int:
    return session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.published_at.is_(None))
    ) or 0


# Relays in this process that want to hear, right after a commit, that there is work.
_listeners: list[Callable[[], None]] = []
_listeners_lock = threading.Lock()


def on_outbox_commit(callback: Callable[[], None]) -> Callable[[], None]:
    with _listeners_lock:
        _listeners.append(callback)

    def remove() -> None:
        with _listeners_lock:
            if callback in _listeners:
                _listeners.remove(callback)

    return remove


@sa_event.listens_for(Session, "after_commit")
def _notify_relays(session: Session) -> None:
    if session.info.pop("outbox_written", False):
        for callback in list(_listeners):
            callback()


@sa_event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop("outbox_written", None)
    session.info.pop(_PENDING, None)
