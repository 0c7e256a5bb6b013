"""Keeping a service's read copy of a student (fed by roster's events) up to date.

Each event type travels on its own queue, so `student.status_changed` may be applied
before the `student.registered` it follows; every copy records `last_change_id` so that
an older snapshot never overwrites a newer status. Likewise `snapshot_at`, the roster time
(`occurred_at`) of the newest registration or class change applied: a redelivered older one
(its first delivery failed while a newer went through) leaves name and class as they are.
A number an event names may be a former one (R3): handlers resolve it first
(`services.common.number_aliases`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.errors import NotFound
from services.common.events import StudentClassChanged, StudentRegistered


def take_snapshot(row: Any, occurred_at: datetime) -> bool:
    """Whether an event made at `occurred_at` is to be applied to `row`: False when the row already holds a
    newer snapshot (the event is left unapplied), else the row now holds this one."""
    if row.snapshot_at is not None and _aware(occurred_at) < _aware(row.snapshot_at):
        return False
    row.snapshot_at = occurred_at
    return True


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite gives UTC back without its zone


def copy_registration(row: Any, payload: StudentRegistered, occurred_at: datetime) -> bool:
    """Fill `row` (name, gender, college_code, class_code, status, left) from the event made at
    `occurred_at`; False, with nothing changed, when the row holds a newer snapshot."""
    if not take_snapshot(row, occurred_at):
        return False
    row.name = payload.name
    row.gender = payload.gender
    row.college_code = payload.college_code
    row.class_code = payload.class_code
    if row.last_change_id is None:  # no status change applied yet: the snapshot is current
        row.status = payload.status
        row.left = payload.left
    return True


def read_copies(session: Session, model: Any, numbers: Iterable[str]) -> dict[str, Any]:
    """The read-copy rows of these students, by number, in one query (batched handlers)."""
    wanted = list(numbers)
    if not wanted:
        return {}
    return {row.student_number: row
            for row in session.scalars(select(model).where(model.student_number.in_(wanted)))}


def copy_class_change(session: Session, model: Any, payload: StudentClassChanged, occurred_at: datetime) -> Any:
    """调班 (R9): the read copy follows the class and college, unless it holds a newer snapshot. Its
    `student.registered` may still be on its way (another queue): NotFound, so the handler's retry
    applies the move later."""
    row = session.get(model, payload.student_number)
    if row is None:
        raise NotFound(f"还没有学号 {payload.student_number} 的学生记录，稍后重试")
    if take_snapshot(row, occurred_at):
        row.class_code, row.college_code = payload.new_class_code, payload.new_college_code
        row.updated_at = datetime.now(UTC)
    return row

