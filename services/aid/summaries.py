"""Counts for the home page (issue 9): applications waiting for the caller's review step
(within the scope `applications.review_queue` uses), or a student's own applications still
under review."""

from __future__ import annotations

from sqlalchemy import func, select

from services.aid import access
from services.aid.adapters.orm import Application, Student
from services.aid.domain import review
from services.common.caller import STUDENT, Caller
from services.common.db import Database


def home_counts(db: Database, caller: Caller) -> dict[str, int]:
    out: dict[str, int] = {}
    with db.reading() as s:
        if caller.role in review.REVIEW_ROLES:
            statuses = [step.status for step in review.steps_of(caller.role)]
            query = select(func.count()).select_from(Application) \
                .join(Student, Student.student_number == Application.student_number) \
                .where(Application.status.in_(statuses))
            if not access.whole_register(caller):
                kind, ids = caller.scope.kind, list(caller.scope.ids)
                if kind == "college":
                    query = query.where(Application.college_code.in_(ids))
                elif kind == "classes":
                    query = query.where(Application.class_code.in_(ids))
                else:
                    return {"review_queue": 0}  # no review scope: nothing of theirs waits
            out["review_queue"] = int(s.scalar(query) or 0)
        elif caller.role == STUDENT:
            numbers = list(caller.scope.ids) if caller.scope.kind == "self" else []
            out["own_applications"] = int(s.scalar(
                select(func.count()).select_from(Application)
                .where(Application.student_number.in_(numbers),
                       Application.status.in_([step.status for step in review.STEPS]))) or 0)
    return out
