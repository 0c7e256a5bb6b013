"""Keeping a service's read copy of a student (fed by roster's events) up to date.

Each event type travels on its own queue, so `student.status_changed` may be applied
before the `student.registered` it follows; every copy records `last_change_id` so that
an older snapshot never overwrites a newer status.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from services.common.errors import NotFound
from services.common.events import StudentClassChanged, StudentRegistered

P = TypeVar("P", bound=BaseModel)


def copy_registration(row: Any, payload: StudentRegistered) -> None:
    """Fill `row` (name, gender, college_code, class_code, status, left) from the event."""
    row.name = payload.name
    row.gender = payload.gender
    row.college_code = payload.college_code
    row.class_code = payload.class_code
    if row.last_change_id is None:  # no status change applied yet: the snapshot is current
        row.status = payload.status
        row.left = payload.left


def read_copies(session: Session, model: Any, numbers: Iterable[str]) -> dict[str, Any]:
    """The read-copy rows of these students, by number, in one query (batched handlers)."""
    wanted = list(numbers)
    if not wanted:
        return {}
    return {row.student_number: row
            for row in session.scalars(select(model).where(model.student_number.in_(wanted)))}


def copy_class_change(session: Session, model: Any, payload: StudentClassChanged) -> Any:
    """调班 (R9): the read copy follows the class and college. Its `student.registered` may still be on
    its way (another queue): NotFound, so the handler's retry applies the move later."""
    row = session.get(model, payload.student_number)
    if row is None:
        raise NotFound(f"还没有学号 {payload.student_number} 的学生记录，稍后重试")
    row.class_code, row.college_code = payload.new_class_code, payload.new_college_code
    row.updated_at = datetime.now(UTC)
    return row


# --- former numbers (R3) ---------------------------------------------------------------
# Roster may publish an event for a student's old number and then `student.number_changed`; each
# travels on its own queue, so a consumer can apply the rename first. Each consumer keeps an alias
# table (old_number PK, new_number, renamed_at) and resolves a number through it before looking up
# the copy, so the late event applies to the renamed student. A chain a→b→c is stored resolved
# (a→c, b→c), so looking up is one query, never a walk.

def record_alias(session: Session, model: Any, old: str, new: str, when: datetime) -> None:
    """Remember that `old` is now `new` (in the rename's transaction). Earlier names of `old` follow
    it to `new`; `new` itself is current again if it had been renamed away before."""
    session.execute(update(model).where(model.new_number == old).values(new_number=new, renamed_at=when))
    session.execute(delete(model).where(model.old_number == new))  # current again (also drops a new→new)
    existing = session.get(model, old)
    if existing is None:
        session.add(model(old_number=old, new_number=new, renamed_at=when))
    else:  # the same number renamed again (redelivery is stopped earlier by the inbox)
        existing.new_number, existing.renamed_at = new, when
    session.flush()


def current_numbers(session: Session, model: Any, numbers: Iterable[str]) -> dict[str, str]:
    """Each of these numbers mapped to the student's current number (itself unless renamed), in one
    query (batched handlers)."""
    wanted = set(numbers)
    if not wanted:
        return {}
    renamed = {old: new for old, new in session.execute(select(model.old_number, model.new_number)
                                                        .where(model.old_number.in_(wanted)))}
    return {number: renamed.get(number, number) for number in wanted}


def current_number(session: Session, model: Any, number: str) -> str:
    """The student's current number for a number an event names."""
    return current_numbers(session, model, (number,))[number]


def with_current_numbers(session: Session, model: Any, payloads: Iterable[P]) -> list[P]:
    """These event payloads (each with a `student_number`), each naming the student's current number:
    the rest of the handler then works as if roster had sent it under that number. One query."""
    items = list(payloads)
    return renumbered(items, current_numbers(session, model, (p.student_number for p in items)))  # type: ignore[attr-defined]


def renumbered(payloads: Iterable[P], current: dict[str, str]) -> list[P]:
    """These payloads under the numbers `current` maps theirs to (from `current_numbers`)."""
    result = []
    for p in payloads:
        number = p.student_number  # type: ignore[attr-defined]
        result.append(p if current.get(number, number) == number
                      else p.model_copy(update={"student_number": current[number]}))
    return result


def with_current_number(session: Session, model: Any, payload: P) -> P:
    """One event payload naming the student's current number (`with_current_numbers`)."""
    return with_current_numbers(session, model, (payload,))[0]
