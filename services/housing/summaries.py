"""Counts for the home page (issue 9): what waits for the housing centre's action.

The same conditions as the lists they lead to (`handlers.holders_who_left`,
`handlers.restore_problems`), counted in SQL instead of listed.
"""

from __future__ import annotations

from sqlalchemy import func, select

from services.common.caller import HOUSING_CENTRE, STUDENT_AFFAIRS, Caller
from services.common.db import Database
from services.common.models import AuditEntry
from services.housing.adapters.orm import Bed, Student

HOME_READERS = (HOUSING_CENTRE, STUDENT_AFFAIRS)


def home_counts(db: Database, caller: Caller) -> dict[str, int]:
    """离校未退宿 (H5) and beds a revocation could not give back; nothing for other roles."""
    if caller.role not in HOME_READERS and not caller.is_system():
        return {}
    with db.reading() as s:
        left = s.scalar(select(func.count()).select_from(Student)
                        .join(Bed, Bed.occupant == Student.student_number).where(Student.left.is_(True))) or 0
        restore = s.scalar(
            select(func.count(func.distinct(Student.student_number)))
            .select_from(AuditEntry).join(Student, Student.student_number == AuditEntry.target)
            .outerjoin(Bed, Bed.occupant == Student.student_number)
            .where(AuditEntry.action == "bed.restore_failed", Bed.id.is_(None), Student.left.is_(False))) or 0
    return {"holders_who_left": int(left), "restore_problems": int(restore)}
