"""Per-student serialisation of writes across concurrent workers and processes.

Registration, status changes and assignments of one student must not interleave: a
status change that finds no student yet is parked for the registration to pick up, and
the two must not miss each other. PostgreSQL gets a transaction-scoped advisory lock on
the student number; SQLite needs none, since its writers already take turns.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

# First key of the two-key advisory lock, so housing's locks never meet anyone else's.
_NAMESPACE = 0x484F5553  # "HOUS"


def lock_student(session: Session, student_number: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:ns, hashtext(:number))"),
                        {"ns": _NAMESPACE, "number": student_number})


# A change of more students than this locks the beds table instead of each student: one
# advisory lock per student would fill PostgreSQL's shared lock table
# (max_locks_per_transaction × max_connections, 6,400 by default, shared by every database).
MAX_STUDENT_LOCKS = 200


def lock_students(session: Session, numbers: Iterable[str]) -> None:
    """Serialise a change of several students (moves, allocation, check-out) with roster's
    events about them, before any bed is read.

    Few students: their advisory locks, in number order like the status handler, so the
    two cannot deadlock. Many: `LOCK TABLE beds IN EXCLUSIVE MODE`, which waits for every
    transaction holding bed rows and makes any later `SELECT … FOR UPDATE` of beds wait
    until this change commits; a leaving event then sees the student's new bed, or the
    change sees that the student has left.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    wanted = sorted(set(numbers))
    if len(wanted) > MAX_STUDENT_LOCKS:
        session.execute(text("LOCK TABLE beds IN EXCLUSIVE MODE"))
        return
    for number in wanted:
        lock_student(session, number)
