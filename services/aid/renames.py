"""A student's number replaced (roster's `student.number_changed`, R3): aid's records follow.

The 在校生库 copy, the 困难学生库 (needy records), applications, the 受助学生库 (awards) and
instalments move to the new number in one transaction (`services.common.renames`: inbox, order with
the registration, alias of the old number, audit).
"""

from __future__ import annotations

from services.aid.adapters.orm import Application, Award, Instalment, NeedyRecord, Student
from services.common.db import Database
from services.common.envelope import Envelope
from services.common.renames import Renumbering, rename_student

RENUMBERING = Renumbering(
    service="aid", consumer="aid.on_student_number_changed", copy=Student,
    # Every aid table keyed by student number (besides the copy itself).
    columns=tuple((model.__table__, "student_number") for model in (NeedyRecord, Application, Award, Instalment)),
)


def on_student_number_changed(db: Database, envelope: Envelope) -> None:
    with db.transaction() as s:
        rename_student(s, envelope, RENUMBERING)
