"""Roster use cases for student records: register, read, search, status changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, union
from sqlalchemy.orm import Session

from services.common.caller import (
    ACADEMIC_AFFAIRS,
    IT_CENTRE,
    STUDENT,
    STUDENT_AFFAIRS,
    SYSTEM,
    Caller,
)
from services.common.db import Database
from services.common.envelope import Actor, actor_of, new_event
from services.common.errors import Forbidden, Invalid, NotFound
from services.common.events import StudentRegistered, StudentStatusChanged
from services.common.health import health_report
from services.common.outbox import record_event
from services.roster import org_units
from services.roster.adapters.orm import OrgUnit, StatusChange, Student
from services.roster.domain import status as st
from services.roster.domain.students import mask_national_id

SOURCE = "roster"
# A search counts its matches up to this many (100 pages of 20); beyond, `total_capped` says "more".
# An exact count of a common surname among a million students (60,000 王) costs a heap visit per match.
SEARCH_COUNT_CAP = 2_000
# Roles that need full ID numbers for their work (registration, status changes, imports).
SEES_FULL_ID = {STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, IT_CENTRE, SYSTEM}


def health(db: Database) -> dict[str, Any]:
    return health_report(db, SOURCE, students=Student)


# 组织机构: one implementation, in services/roster/org_units.py (rules: domain/org_tree.py).
upsert_org_units = org_units.upsert_org_units


def _registered_event(student: Student, caller: Caller) -> Any:
    return new_event(
        "student.registered",
        StudentRegistered(
            student_number=student.student_number, name=student.name, gender=student.gender,
            college_code=student.college_code, class_code=student.class_code,
            status=student.status, left=st.has_left(student.status),
        ),
        source=SOURCE, actor=actor_of(caller), correlation_id=caller.correlation_id,
    )


def student_view(student: Student, caller: Caller, names: dict[str, str]) -> dict[str, Any]:
    own = caller.role == STUDENT and caller.username == student.student_number
    full_id = caller.role in SEES_FULL_ID or own
    return {
        "student_number": student.student_number,
        "name": student.name,
        "gender": student.gender,
        "gender_label": "男" if student.gender == "1" else "女",
        "national_id": student.national_id if full_id else mask_national_id(student.national_id),
        "birth_date": student.birth_date.isoformat() if student.birth_date else None,
        "college_code": student.college_code,
        "college_name": names.get(student.college_code, ""),
        "class_code": student.class_code,
        "class_name": names.get(student.class_code, ""),
        "status": student.status,
        "status_label": st.label(student.status),
        "left": st.has_left(student.status),
        "on_campus": st.on_campus(student.status),
    }


def _names(s: Session, codes: set[str] | None = None) -> dict[str, str]:
    """Names of org units: those of `codes` only when given (a page of students needs a few dozen,
    not the tens of thousands of classes of a large institution)."""
    query = select(OrgUnit.code, OrgUnit.name)
    if codes is not None:
        query = query.where(OrgUnit.code.in_(sorted(codes)))
    return {code: name for code, name in s.execute(query)}


def get_student(db: Database, caller: Caller, student_number: str) -> dict[str, Any]:
    with db.reading() as s:
        student = s.get(Student, student_number)
        if student is None:
            if caller.role in SEES_FULL_ID:
                raise NotFound(f"学号 {student_number} 不存在")
            raise Forbidden(f"学生 {student_number} 不在您的数据权限范围内")
        caller.require_student(student.student_number, student.college_code, student.class_code)
        return student_view(student, caller, _names(s))


def _scope_filter(caller: Caller) -> Any:
    scope = caller.scope
    if caller.is_system() or scope.kind == "institution":
        return None
    if scope.kind == "college":
        return Student.college_code.in_(scope.ids)
    if scope.kind == "classes":
        return Student.class_code.in_(scope.ids)
    if scope.kind == "self":
        return Student.student_number.in_(scope.ids)
    return Student.student_number.is_(None)  # no rows


def search_students(db: Database, caller: Caller, q: str = "", page: int = 1,
                    per_page: int = 20, class_code: str = "", status: str = "", *, college_code: str = "",
                    grade: str = "", gender: str = "", ethnicity: str = "", counted: bool = False) -> dict[str, Any]:
    """Students in the caller's scope matching `q` (number prefix, part of the name or the full
    ID number), optionally one class and one status (R19). The dashboard's filters (issue 9):
    college, grade (the number's first four digits), gender, ethnicity, and `counted` — only the
    students R20's statistics count (not 未报到, not left), so a chart's bar and its list agree."""
    if page < 1 or not 1 <= per_page <= 100:
        raise Invalid("分页参数无效：page ≥ 1，1 ≤ per_page ≤ 100")
    query = select(Student)
    scope = _scope_filter(caller)
    if scope is not None:
        query = query.where(scope)
    q = (q or "").strip()
    branches = _matching(db, q) if q else []
    if class_code:
        query = query.where(Student.class_code == class_code)
    if status:
        query = query.where(Student.status == status)
    if college_code:
        query = query.where(Student.college_code == college_code)
    if grade:
        query = query.where(Student.student_number.startswith(str(grade)[:4]))
    if gender:
        query = query.where(Student.gender == gender)
    if ethnicity:
        query = query.where(Student.ethnicity == ethnicity)
    if counted:
        query = query.where(Student.status.not_in(sorted(st.LEFT | {st.NOT_REPORTED})))
    filtered = query
    if branches:
        query = query.where(or_(*branches))
    with db.reading() as s:
        counted_rows = query.with_only_columns(Student.student_number).limit(SEARCH_COUNT_CAP + 1).subquery()
        total = s.scalar(select(func.count()).select_from(counted_rows)) or 0
        capped, total = total > SEARCH_COUNT_CAP, min(total, SEARCH_COUNT_CAP)
        if branches:  # the page among each branch's first rows: one OR walks the whole key in order
            shown = page * per_page
            firsts = union(*(select(b.c.student_number) for b in (
                filtered.where(branch).with_only_columns(Student.student_number)
                .order_by(Student.student_number).limit(shown).subquery() for branch in branches))).subquery()
            query = filtered.where(Student.student_number.in_(select(firsts.c.student_number)))
        rows = s.scalars(query.order_by(Student.student_number)
                         .offset((page - 1) * per_page).limit(per_page)).all()
        names = _names(s, {r.college_code for r in rows} | {r.class_code for r in rows})
        items = [student_view(r, caller, names) for r in rows]
    return {"items": items, "total": total, "total_capped": capped, "page": page, "per_page": per_page}


def _matching(db: Database, q: str) -> list[Any]:
    """What `q` may match: a number prefix, part of the name, the full ID number (any one)."""
    number = Student.student_number.startswith(q)
    if q.isdigit():  # R6 numbers are digits: the prefix is also a range of the primary key, in its order
        bound = q.rstrip("9")  # "2029" → below "203"; all nines: no upper bound
        number = and_(Student.student_number >= q, number)
        if bound:
            number = and_(Student.student_number < bound[:-1] + str(int(bound[-1]) + 1), number)
    return [number, _name_contains(db, q), Student.national_id == q.upper()]


def _name_contains(db: Database, q: str) -> Any:
    """`name` contains `q`. On PostgreSQL also "the name's characters include q's", which the name
    containing q implies (same rows) and the GIN index of migration 0007 answers: Chinese names are
    two to four characters, too short for trigrams. Not with LIKE wildcards in q (they stand for others)."""
    contains = Student.name.contains(q)
    if not db.is_postgres or "%" in q or "_" in q:
        return contains
    return and_(func.string_to_array(Student.name, None).op("@>")(func.string_to_array(q, None)), contains)


def change_status(s: Session, student: Student, new_status: str, *, reason: str,
                  effective_at: datetime, actor: Actor, evidence: str | None,
                  correlation_id: str | None, revokes: StatusChange | None = None) -> StatusChange:
    """Apply a status change and publish it (outbox), inside the caller's transaction."""
    change = stage_status_change(s, student, new_status, reason=reason, effective_at=effective_at,
                                 actor=actor, evidence=evidence, revokes=revokes)
    s.flush()  # the change's id orders it for every consumer
    publish_status_change(s, change, actor=actor, correlation_id=correlation_id)
    return change


def stage_status_change(s: Session, student: Student, new_status: str, *, reason: str,
                        effective_at: datetime, actor: Actor, evidence: str | None,
                        revokes: StatusChange | None = None) -> StatusChange:
    """The change itself, not yet flushed; `publish_status_change` once it has its id.

    Batches stage many changes, flush once, then publish them all.
    """
    change = StatusChange(
        student_number=student.student_number, old_status=student.status,
        new_status=new_status, reason=reason, effective_at=effective_at,
        actor_kind=actor.kind, actor_id=actor.id, evidence=evidence,
        revokes_change_id=revokes.id if revokes else None,
        created_at=datetime.now(UTC),
    )
    s.add(change)
    student.status = new_status
    student.updated_at = change.created_at
    return change


def publish_status_change(s: Session, change: StatusChange, *, actor: Actor,
                          correlation_id: str | None) -> None:
    assert change.id is not None, "flush the change first"
    record_event(s, new_event(
        "student.status_changed",
        StudentStatusChanged(
            student_number=change.student_number, change_id=change.id,
            old_status=change.old_status, new_status=change.new_status,
            left=st.has_left(change.new_status), reason=change.reason, effective_at=change.effective_at,
            revokes_change_id=change.revokes_change_id,
        ),
        source=SOURCE, actor=actor, correlation_id=correlation_id,
    ))


def latest_change(s: Session, student_number: str) -> StatusChange | None:
    return s.scalars(select(StatusChange).where(StatusChange.student_number == student_number)
                     .order_by(StatusChange.id.desc()).limit(1)).first()


def status_history(db: Database, caller: Caller, student_number: str) -> list[dict[str, Any]]:
    with db.reading() as s:
        student = s.get(Student, student_number)
        if student is None:
            raise NotFound(f"学号 {student_number} 不存在")
        caller.require_student(student.student_number, student.college_code, student.class_code)
        changes = s.scalars(select(StatusChange).where(StatusChange.student_number == student_number)
                            .order_by(StatusChange.id)).all()
        return [{
            "id": c.id, "old_status": c.old_status, "old_label": st.label(c.old_status),
            "new_status": c.new_status, "new_label": st.label(c.new_status), "reason": c.reason,
            "effective_at": c.effective_at.isoformat(), "actor": c.actor_id,
            "evidence": c.evidence, "revokes_change_id": c.revokes_change_id,
        } for c in changes]
