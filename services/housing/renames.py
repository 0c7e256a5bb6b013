"""A student's number replaced (roster's `student.number_changed`, R3): housing's copies follow.

The read copy, every stay, the bed's occupant and a parked early status change move to the new
number in one transaction (`services.common.renames`: inbox, order with the registration, alias of
the old number, audit), under both numbers' student locks.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.common.db import Database
from services.common.envelope import Envelope
from services.common.renames import Moved, NumberChange, Renumbering, rename_student
from services.housing.adapters.locks import lock_students
from services.housing.adapters.orm import Bed, EarlyStatusChange, Occupancy, Student


def _lock(s: Session, change: NumberChange) -> Moved:
    """The same locks as every bed change of these students, before anything is read."""
    lock_students(s, sorted((change.old, change.new)))
    return Moved()


RENUMBERING = Renumbering(
    service="housing", consumer="housing.on_student_number_changed", copy=Student, own=_lock,
    # Every housing column holding a student number (besides the read copy's key).
    columns=((Occupancy.__table__, "student_number"), (Bed.__table__, "occupant"),
             (EarlyStatusChange.__table__, "student_number")),
)


def on_student_number_changed(db: Database, envelope: Envelope) -> None:
    with db.transaction() as s:
        rename_student(s, envelope, RENUMBERING)
