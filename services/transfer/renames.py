"""A student's number replaced (roster's `student.number_changed`, R3): transfer's records follow.

The read copy, internal changes (T7) and our side's number on transfers (outflow: the student
leaving us; inflow: the number we issued) move to the new number; the peer's numbers stay as they
are. One transaction (`services.common.renames`: inbox, order with the registration, alias of the
old number, audit).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from services.common.db import Database
from services.common.envelope import Envelope
from services.common.renames import Moved, NumberChange, Renumbering, rename_student
from services.transfer.adapters.orm import InternalChange, Student, Transfer


def _our_side_of_transfers(s: Session, change: NumberChange) -> Moved:
    """Only the column of the direction in which the number is ours."""
    transfers = Transfer.__table__
    moved = {}
    for key, direction, column in (("transfers_out", "outflow", "outflow_student_number"),
                                   ("transfers_in", "inflow", "inflow_student_number")):
        moved[key] = s.execute(update(transfers).where(transfers.c.direction == direction,
                                                       transfers.c[column] == change.old)
                               .values({column: change.new})).rowcount
    return Moved(rows=moved)


RENUMBERING = Renumbering(
    service="transfer", consumer="transfer.on_student_number_changed", copy=Student,
    columns=((InternalChange.__table__, "student_number"),), own=_our_side_of_transfers,
)


def on_student_number_changed(db: Database, envelope: Envelope) -> None:
    with db.transaction() as s:
        rename_student(s, envelope, RENUMBERING)
