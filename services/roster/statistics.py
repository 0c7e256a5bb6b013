"""Statistics of the register (R20) and each student's audit history (R7, R21).

Counts leave out students who did not report (未报到, R4) and those who left (R19: their
records stay queryable and exportable, but not counted). One GROUP BY per request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from services.common.caller import STUDENT, Caller
from services.common.db import Database
from services.common.errors import Forbidden, Invalid, NotFound
from services.common.models import AuditEntry
from services.roster.adapters.orm import OrgUnit, Student
from services.roster.domain import status as st
from services.roster.domain.codes import DIVISIONS
from services.roster.handlers import SEES_FULL_ID, _scope_filter
from services.roster.importing import code_book

EXCLUDED = sorted(st.LEFT | {st.NOT_REPORTED})
DIMENSIONS: dict[str, tuple[str, Any]] = {
    "college": ("学院", Student.college_code),
    "major": ("专业", Student.major_code),
    "grade": ("年级", func.substr(Student.student_number, 1, 4)),
    "class": ("班级", Student.class_code),
    "gender": ("性别", Student.gender),
    "ethnicity": ("民族", Student.ethnicity),
    "region": ("生源地区（户口所在省份）", func.substr(Student.household_division, 1, 2)),
    "status": ("学籍状态", Student.status),
}


def statistics(db: Database, caller: Caller, by: str) -> dict[str, Any]:
    if caller.role == STUDENT:
        raise Forbidden("学生无权查看统计")
    if by not in DIMENSIONS:
        raise Invalid("统计维度应为：" + "、".join(DIMENSIONS))
    title, column = DIMENSIONS[by]
    query = select(column.label("key"), func.count().label("n")).where(Student.status.not_in(EXCLUDED)).group_by(column)
    scope = _scope_filter(caller)
    if scope is not None:
        query = query.where(scope)
    with db.reading() as s:
        # Core rows, not ORM ones: a class breakdown of a large institution is ~20,000 rows.
        if by in ("college", "major", "class"):  # names joined to the counts, not all units fetched
            counted = query.subquery()
            named = s.connection().execute(select(counted.c.key, counted.c.n, OrgUnit.name)
                                           .outerjoin(OrgUnit, OrgUnit.code == counted.c.key)).all()
            counts = [(key, n) for key, n, _ in named]
            names = {key: name for key, _, name in named if name is not None}
            labels = lambda key: names.get(key or "", key or "未填写")  # noqa: E731
        else:
            counts = [(key, n) for key, n in s.connection().execute(query)]
            labels = _labels(s, by)
    rows = sorted(({"key": key, "label": labels(key), "count": n} for key, n in counts),
                  key=lambda r: (r["key"] is None, r["key"] or ""))
    return {"by": by, "title": title, "rows": rows, "total": sum(r["count"] for r in rows),
            "excluded": [st.label(x) for x in EXCLUDED]}


def _labels(s: Any, by: str) -> Any:
    if by in ("gender", "ethnicity"):
        table = code_book(s)[by]
        return lambda key: table.label_of(key) if key else "未填写"
    if by == "region":
        divisions = code_book(s)[DIVISIONS]
        return lambda key: divisions.label_of(f"{key}0000") if key else "未填写"
    if by == "status":
        return lambda key: st.label(key)
    return lambda key: f"{key}级" if key else "未填写"


def student_audit(db: Database, caller: Caller, student_number: str) -> list[dict[str, Any]]:
    """Every audited change of one student's record (R7): who, when, before and after."""
    caller.require_role(*SEES_FULL_ID)
    with db.reading() as s:
        student = s.get(Student, student_number)
        if student is None and not s.scalar(select(func.count()).select_from(AuditEntry)
                                            .where(AuditEntry.target == student_number)):
            raise NotFound(f"学号 {student_number} 不存在")  # a merged-away record keeps its history
        entries = s.scalars(select(AuditEntry).where(AuditEntry.target == student_number)
                            .order_by(AuditEntry.id)).all()
        return [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "role": e.role, "action": e.action,
                 "before": e.before, "after": e.after} for e in entries]
