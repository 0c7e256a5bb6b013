"""Per-student serialisation of writes across concurrent workers and processes.

Registration, status changes and assignments of one student must not interleave: a
status change that finds no student yet is parked for the registration to pick up, and
the two must not miss each other. PostgreSQL gets a transaction-scoped advisory lock on
the student number; SQLite needs none, since its writers already take turns.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# First key of the two-key advisory lock, so housing's locks never meet anyone else's.
_NAMESPACE = 0x484F5553  # "HOUS"


def lock_student(session: Session, student_number: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:ns, hashtext(:number))"),
                        {"ns": _NAMESPACE, "number": student_number})
