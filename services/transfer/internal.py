"""Changes inside the institution (T7): change of major or of study centre.

Filed (student affairs, academic affairs, or the student's counselor / deputy secretary) → the unit
left approves (`pending_left`) → the unit joined approves (`pending_joined`) → `approved`: roster moves
the student to the new class (`roster.move_class` through the port, as transfer's system caller, with
the reason). A rejection at either stage ends it. Rules in domain/internal.py.

The move is made inside the transaction that approves, so a failed move (say the student left
meanwhile) leaves the change waiting; a move that went through before a failed commit is recognised
on the next approval (the student is already in the class) and not made twice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select

from services.common.audit import audit
from services.common.caller import ACADEMIC_AFFAIRS, COUNSELOR, DEPUTY_SECRETARY, STUDENT_AFFAIRS, SYSTEM, Caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.transfer.adapters.orm import InternalChange, Student
from services.transfer.domain import internal as rules
from services.transfer.roster_port import RosterPort

INSTITUTION_WIDE = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, SYSTEM)
MAX_LISTED = 500


def _raise(exc: rules.InternalRefusal) -> Exception:
    return Forbidden(exc.message) if exc.forbidden else Invalid(exc.message)


def _view(change: InternalChange, student: Student | None) -> dict[str, Any]:
    return {
        "id": change.id, "student_number": change.student_number, "name": student.name if student else "",
        "class_code": student.class_code if student else None,
        "kind": change.kind, "kind_label": rules.kind_label(change.kind),
        "from_unit": change.from_unit, "to_unit": change.to_unit, "to_class_code": change.to_class_code,
        "reason": change.reason, "state": change.state, "state_label": rules.state_label(change.state),
        "awaiting_unit": rules.awaiting_unit(change.state, change.from_unit, change.to_unit),
        "approvals": json.loads(change.approvals or "[]"), "filed_by": change.filed_by,
        "created_at": change.created_at.isoformat(), "updated_at": change.updated_at.isoformat(),
    }


def file_internal_change(db: Database, caller: Caller, roster: RosterPort, student_number: str, kind: str,
                         to_class_code: str, reason: str) -> dict[str, Any]:
    try:
        reason = rules.check_reason(reason)
    except rules.InternalRefusal as exc:
        raise _raise(exc) from None
    number, to_class = str(student_number or "").strip(), str(to_class_code or "").strip()
    identity = roster.student_identity(number)
    if identity is None:
        if caller.role in INSTITUTION_WIDE:
            raise NotFound(f"学号 {number} 不存在")
        raise Forbidden(f"学生 {number} 不在您的数据权限范围内")
    college, klass = identity["college_code"], identity["class_code"]
    refusal = rules.filing_refusal(caller.role, caller.scope, number, college, klass)
    if refusal:
        raise Forbidden(refusal)
    target = roster.class_info(to_class)
    if target is None:
        raise Invalid(f"班级 {to_class} 不存在")
    if not target.get("college_code"):
        raise Invalid(f"班级 {to_class} 不属于任何学院，请先完善组织机构")
    current = roster.class_info(klass) or {}
    problem = rules.change_problem(kind, identity["status"], klass, to_class, current.get("major_code"),
                                   target.get("major_code"), college, target["college_code"])
    if problem:
        raise Invalid(f"学号 {number}：{problem}")
    now = datetime.now(UTC)
    with db.transaction() as s:
        open_id = s.scalar(select(InternalChange.id).where(InternalChange.student_number == number,
                                                            InternalChange.state.in_(rules.OPEN)))
        if open_id is not None:
            raise Conflict(f"学号 {number} 已有未完成的校内异动（{open_id}）")
        change = InternalChange(student_number=number, kind=kind, from_unit=college, to_unit=target["college_code"],
                                to_class_code=to_class, reason=reason, state=rules.PENDING_LEFT, approvals="[]",
                                filed_by=caller.username, created_at=now, updated_at=now)
        s.add(change)
        s.flush()
        audit(s, caller, "internal.file", number, None,
              {"change_id": change.id, "kind": kind, "from_class_code": klass, "to_class_code": to_class,
               "from_unit": change.from_unit, "to_unit": change.to_unit, "reason": reason})
        return _view(change, s.get(Student, number))


def decide_internal_change(db: Database, caller: Caller, roster: RosterPort, change_id: int, approve: bool,
                           note: str = "") -> dict[str, Any]:
    note = str(note or "").strip()
    with db.transaction() as s:
        change = s.scalars(select(InternalChange).where(InternalChange.id == int(change_id))
                           .with_for_update()).first()
        if change is None:
            raise NotFound(f"校内异动 {change_id} 不存在")
        if change.state not in rules.OPEN:
            raise Conflict(f"校内异动 {change.id} 已{rules.state_label(change.state)}，不能再审核")
        refusal = rules.decider_refusal(caller.role, caller.scope, change.state, change.from_unit, change.to_unit)
        if refusal:
            raise Forbidden(refusal)
        if not approve and not note:
            raise Invalid("不同意时请填写理由")
        before = change.state
        unit = rules.awaiting_unit(before, change.from_unit, change.to_unit)
        change.state = rules.next_state(before, bool(approve))
        now = datetime.now(UTC)
        approvals = json.loads(change.approvals or "[]")
        approvals.append({"stage": "left" if before == rules.PENDING_LEFT else "joined", "unit": unit,
                          "by": caller.username, "role": caller.role, "approve": bool(approve), "note": note or None,
                          "at": now.isoformat()})
        change.approvals, change.updated_at = json.dumps(approvals, ensure_ascii=False), now
        moved = _move(change, roster) if change.state == rules.APPROVED else None
        audit(s, caller, "internal.decide", change.student_number, {"state": before},
              {"change_id": change.id, "state": change.state, "note": note or None,
               **({"move": moved} if moved else {})})
        return {**_view(change, s.get(Student, change.student_number)), "move": moved}


def _move(change: InternalChange, roster: RosterPort) -> dict[str, Any]:
    identity = roster.student_identity(change.student_number)
    if identity is not None and identity["class_code"] == change.to_class_code:
        return {"already": True, "new_class_code": change.to_class_code}  # moved by an earlier attempt
    reason = f"{rules.kind_label(change.kind)}：{change.reason}（校内异动 {change.id}）"
    return roster.move_class(change.student_number, change.to_class_code, reason)


def list_internal_changes(db: Database, caller: Caller, state: str = "") -> list[dict[str, Any]]:
    """The changes the caller sees, newest first: institution-wide offices all, a deputy secretary
    those of their college's units (left or joined), a counselor those of their students."""
    caller.require_role(STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, DEPUTY_SECRETARY, COUNSELOR)
    if state and state not in rules.STATES:
        raise Invalid(f"未知的状态 {state}")
    query = select(InternalChange, Student).outerjoin(Student, Student.student_number == InternalChange.student_number)
    query = _scoped(query, caller)
    if state:
        query = query.where(InternalChange.state == state)
    with db.reading() as s:
        rows = s.execute(query.order_by(InternalChange.id.desc()).limit(MAX_LISTED)).all()
        return [_view(change, student) for change, student in rows]


def _scoped(query: Any, caller: Caller) -> Any:
    ids = caller.scope.ids
    if caller.role == DEPUTY_SECRETARY:
        units = ids if caller.scope.kind == "college" else ()
        return query.where(or_(InternalChange.from_unit.in_(units), InternalChange.to_unit.in_(units)))
    if caller.role == COUNSELOR:
        return query.where(Student.class_code.in_(ids if caller.scope.kind == "classes" else ()))
    return query
