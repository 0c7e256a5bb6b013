"""A student's number replaced (roster's `student.number_changed`, R3), as each consumer applies it.

`rename_student` is the one step every consumer (identity, housing, aid, transfer) runs in its own
transaction: inbox check; the service's own part (`Renumbering.own`: locks, rows a plain column list
cannot say, checks); its number columns (`Renumbering.columns`); the read copy renamed; the old number
recorded as an alias of the new one (`number_aliases`), so roster's events still naming it (other
queues, overtaken by this one) reach the renamed student; one audit entry.

Order: the event travels on its own queue. Arriving before the student's `student.registered` (no copy
under either number) it raises `NotFound`, so the handler's retries (then the dead-letter replay) apply
it once the registration is in; everything done before that is rolled back with the transaction. A copy
already under the new number (a registration roster sent after the rename overtook this event) is the
newer one: the old copy is dropped and the rest still moves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, delete, update
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import system_caller
from services.common.envelope import Envelope
from services.common.errors import NotFound
from services.common.events import StudentNumberChanged
from services.common.inbox import first_delivery
from services.common.number_aliases import record_alias


@dataclass(frozen=True)
class NumberChange:
    """One rename as a service applies it."""

    old: str
    new: str
    at: datetime
    event_id: str


@dataclass(frozen=True)
class Moved:
    """What a service's own part did: rows moved per table (the audit's `moved`), and what else its
    audit entry says before and after."""

    rows: Mapping[str, int] = field(default_factory=dict)
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Renumbering:
    """How one service follows a new student number."""

    service: str
    consumer: str  # the inbox's name for the handler
    copy: Any  # the read-copy model: `student_number` primary key, `updated_at`
    # Number columns renamed as they are, (table, column); the audit counts each table's rows.
    columns: tuple[tuple[Table, str], ...] = ()
    # Runs first, after the inbox: locks, rows a column list cannot say, checks. None: the rename is
    # there already (the same change sent again under another event id): nothing more is done.
    own: Callable[[Session, NumberChange], Moved | None] | None = None
    # False where another row shows the student is known here (identity: the account).
    copy_required: bool = True
    action: str = "student.renumber"


def rename_student(session: Session, envelope: Envelope, how: Renumbering) -> NumberChange | None:
    """Apply `student.number_changed` in the caller's transaction; None when it was applied already."""
    payload = StudentNumberChanged.model_validate(envelope.payload)
    if not first_delivery(session, envelope, how.consumer):
        return None
    change = NumberChange(payload.old_number, payload.new_number, datetime.now(UTC), str(envelope.event_id))
    own = how.own(session, change) if how.own is not None else Moved()
    if own is None:
        return None
    old, new = change.old, change.new
    copy, newer = session.get(how.copy, old), session.get(how.copy, new)
    if how.copy_required and copy is None and newer is None:
        raise NotFound(f"还没有学号 {old} 的学生信息，稍后重试")
    moved = {**own.rows, **{table.name: session.execute(update(table).where(table.c[column] == old)
                                                        .values({column: new})).rowcount
                            for table, column in how.columns}}
    if copy is not None:
        session.expunge(copy)  # renamed below by its key, not through the identity map
        copies = how.copy.__table__
        if newer is None:
            session.execute(update(copies).where(copies.c.student_number == old)
                            .values(student_number=new, updated_at=change.at))
        else:
            session.execute(delete(copies).where(copies.c.student_number == old))
    record_alias(session, old, new, change.at)
    audit(session, system_caller(how.service, envelope.correlation_id), how.action, new,
          {"student_number": old, **own.before},
          {"student_number": new, "moved": moved, **own.after, "event_id": change.event_id})
    return change
