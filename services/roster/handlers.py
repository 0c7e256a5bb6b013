"""Roster use cases for student records: register, read, search, status changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import (
    ACADEMIC_AFFAIRS,
    IT_CENTRE,
    STUDENT,
    STUDENT_AFFAIRS,
    SYSTEM,
    Caller,
)
from services.common.db import Database
from services.common.envelope import Actor, new_event
from services.common.errors import Forbidden, Invalid, NotFound
from services.common.events import OrgUnitsChanged, OrgUnitState, StudentRegistered, StudentStatusChanged
from services.common.health import health_report
from services.common.outbox import record_event
from services.roster.adapters.orm import OrgUnit, StatusChange, Student
from services.roster.domain import status as st
from services.roster.domain.students import RecordError, mask_national_id, parse_new_student

SOURCE = "roster"
# Roles that need full ID numbers for their work (registration, status changes, imports).
SEES_FULL_ID = {STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, IT_CENTRE, SYSTEM}


def actor_of(caller: Caller) -> Actor:
    return Actor(kind="system" if caller.is_system() else "user", id=caller.username)


def health(db: Database) -> dict[str, Any]:
    return health_report(db, SOURCE, students=Student)


def upsert_org_units(db: Database, caller: Caller, units: list[dict[str, Any]]) -> dict[str, int]:
    caller.require_role(STUDENT_AFFAIRS)
    with db.transaction() as s:
        saved: dict[str, OrgUnit] = {}
        for unit in units:
            if unit.get("kind") not in ("college", "major", "class"):
                raise Invalid(f"组织单位类型应为 college/major/class：{unit.get('code')}")
            row = s.get(OrgUnit, str(unit["code"]))
            before = None if row is None else {"name": row.name, "parent_code": row.parent_code}
            if row is None:
                row = OrgUnit(code=str(unit["code"]), kind=unit["kind"])
                s.add(row)
            row.name = str(unit["name"])
            row.parent_code = unit.get("parent_code")
            audit(s, caller, "org.upsert", row.code, before,
                  {"name": row.name, "kind": row.kind, "parent_code": row.parent_code}, chain=True)
            saved[row.code] = row
        if saved:  # identity derives a class's college from these (grants, scope checks)
            record_event(s, new_event(
                "org.units_changed",
                OrgUnitsChanged(units=[OrgUnitState(code=r.code, name=r.name, kind=r.kind, parent_code=r.parent_code)
                                       for r in saved.values()]),
                source=SOURCE, actor=actor_of(caller), correlation_id=caller.correlation_id))
    return {"saved": len(units)}


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


def register_students(db: Database, caller: Caller, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Register new students; all-or-nothing: any bad row changes nothing."""
    caller.require_role(IT_CENTRE, STUDENT_AFFAIRS)
    parsed = []
    errors = []
    for index, row in enumerate(rows, start=1):
        try:
            parsed.append(parse_new_student(row))
        except RecordError as exc:
            errors.append({"row": index, "field": exc.field, "message": exc.message})
    if errors:
        raise Invalid("; ".join(f"第{e['row']}行 {e['field']}：{e['message']}" for e in errors[:20]))
    now = datetime.now(UTC)
    registered = existing = 0
    with db.transaction() as s:
        classes = {u.code for u in s.scalars(select(OrgUnit).where(OrgUnit.kind == "class"))}
        for new in parsed:
            if classes and new.class_code not in classes:
                raise Invalid(f"学号 {new.student_number}：班级 {new.class_code} 不存在")
            if s.get(Student, new.student_number) is not None:
                existing += 1
                continue
            student = Student(
                student_number=new.student_number, name=new.name, gender=new.gender,
                national_id=new.national_id, birth_date=new.birth_date,
                college_code=new.college_code, class_code=new.class_code,
                status=st.ENROLLED, created_at=now, updated_at=now,
            )
            s.add(student)
            s.flush()
            record_event(s, _registered_event(student, caller))
            audit(s, caller, "student.register", student.student_number, None,
                  {"name": student.name, "class_code": student.class_code}, chain=True)
            registered += 1
    return {"registered": registered, "existing": existing}


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


def _names(s: Session) -> dict[str, str]:
    return {u.code: u.name for u in s.scalars(select(OrgUnit))}


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
                    per_page: int = 20, class_code: str = "", status: str = "") -> dict[str, Any]:
    """Students in the caller's scope matching `q` (number prefix, part of the name or the full
    ID number), optionally one class and one status (R19)."""
    if page < 1 or not 1 <= per_page <= 100:
        raise Invalid("分页参数无效：page ≥ 1，1 ≤ per_page ≤ 100")
    query = select(Student)
    scope = _scope_filter(caller)
    if scope is not None:
        query = query.where(scope)
    q = (q or "").strip()
    if q:
        query = query.where(or_(Student.student_number.startswith(q), Student.name.contains(q),
                                Student.national_id == q.upper()))
    if class_code:
        query = query.where(Student.class_code == class_code)
    if status:
        query = query.where(Student.status == status)
    with db.reading() as s:
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.scalars(query.order_by(Student.student_number)
                         .offset((page - 1) * per_page).limit(per_page)).all()
        names = _names(s)
        items = [student_view(r, caller, names) for r in rows]
    return {"items": items, "total": total, "page": page, "per_page": per_page}


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
