"""调班 use cases (R9): move a student to another class, list a student's moves.

A move changes the student's class, major and college, is kept as a `ClassMove`, chained in
the audit log and published as `student.class_changed` so the read copies (identity's scope
checks, housing, aid, transfer) follow.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import ROLE_LABELS, STUDENT_AFFAIRS, SYSTEM, Caller
from services.common.db import Database
from services.common.envelope import new_event
from services.common.errors import Forbidden, Invalid, NotFound
from services.common.events import StudentClassChanged
from services.common.outbox import record_event
from services.roster.adapters.orm import ClassMove, OrgUnit, Student
from services.roster.domain import class_moves as rules
from services.roster.handlers import SOURCE, _names, _registered_event, actor_of

MAX_REASON = 500


def _student(s: Session, caller: Caller, number: str, *, lock: bool = False) -> Student:
    """The student, if the caller's scope covers them; unknown numbers are NotFound only for
    institution-wide callers, so nobody probes numbers outside their scope."""
    query = select(Student).where(Student.student_number == number)
    student = s.scalars(query.with_for_update() if lock else query).first()
    if student is None:
        if caller.role in (STUDENT_AFFAIRS, SYSTEM):
            raise NotFound(f"学号 {number} 不存在")
        raise Forbidden(f"学生 {number} 不在您的数据权限范围内")
    caller.require_student(student.student_number, student.college_code, student.class_code)
    return student


def _org_tree(s: Session) -> dict[str, tuple[str, str | None]]:
    return {code: (kind, parent) for code, kind, parent in s.execute(
        select(OrgUnit.code, OrgUnit.kind, OrgUnit.parent_code))}


def move_class(db: Database, caller: Caller, student_number: str, to_class: str, reason: str) -> dict[str, Any]:
    """Move the student to `to_class`; the college (and major) follow the class."""
    if caller.role not in rules.MOVERS:
        raise Forbidden(f"角色“{ROLE_LABELS.get(caller.role, caller.role)}”不能办理调班")
    to_class = str(to_class or "").strip()
    reason = str(reason or "").strip()
    if not reason:
        raise Invalid("请填写调班原因")
    if len(reason) > MAX_REASON:
        raise Invalid(f"调班原因不能超过 {MAX_REASON} 字")
    with db.transaction() as s:
        student = _student(s, caller, student_number, lock=True)
        tree = _org_tree(s)
        if tree.get(to_class, ("", None))[0] != "class":
            raise Invalid(f"班级 {to_class} 不存在")
        new_college = rules.college_of(to_class, tree)
        if new_college is None:
            raise Invalid(f"班级 {to_class} 不属于任何学院，请先完善组织机构")
        old_class, old_college = student.class_code, student.college_code
        problem = rules.refusal(caller.role, caller.scope, old_class, to_class, old_college, new_college)
        if problem:
            raise Forbidden(problem)
        problem = rules.move_problem(student.status, old_class, to_class)
        if problem:
            raise Invalid(f"学号 {student.student_number}：{problem}")
        now = datetime.now(UTC)
        before = {"class_code": old_class, "college_code": old_college, "major_code": student.major_code}
        major = tree[to_class][1]
        student.class_code, student.college_code, student.updated_at = to_class, new_college, now
        if major is not None and tree.get(major, ("", None))[0] == "major":
            student.major_code = major
        move = ClassMove(student_number=student.student_number, old_class_code=old_class, new_class_code=to_class,
                         old_college_code=old_college, new_college_code=new_college, reason=reason,
                         actor_id=caller.username, actor_role=caller.role, created_at=now)
        s.add(move)
        s.flush()
        record_event(s, new_event(
            "student.class_changed",
            StudentClassChanged(student_number=student.student_number, move_id=move.id, old_class_code=old_class,
                                new_class_code=to_class, old_college_code=old_college,
                                new_college_code=new_college, reason=reason),
            source=SOURCE, actor=actor_of(caller), correlation_id=caller.correlation_id))
        # The registration snapshot too: one re-sent earlier (a corrected name) may still be on its
        # queue with the old class; this later one there brings every read copy to the new class.
        record_event(s, _registered_event(student, caller))
        audit(s, caller, "student.move_class", student.student_number, before,
              {"class_code": to_class, "college_code": new_college, "major_code": student.major_code,
               "move_id": move.id, "reason": reason}, chain=True)
        return _view(move, _names(s))


def class_moves(db: Database, caller: Caller, student_number: str) -> list[dict[str, Any]]:
    """The student's moves, oldest first, for callers whose scope covers the student now."""
    with db.reading() as s:
        _student(s, caller, student_number)
        moves = s.scalars(select(ClassMove).where(ClassMove.student_number == student_number)
                          .order_by(ClassMove.id)).all()
        names = _names(s)
        return [_view(m, names) for m in moves]


def _view(move: ClassMove, names: dict[str, str]) -> dict[str, Any]:
    return {
        "move_id": move.id, "student_number": move.student_number,
        "old_class_code": move.old_class_code, "old_class_name": names.get(move.old_class_code, ""),
        "new_class_code": move.new_class_code, "new_class_name": names.get(move.new_class_code, ""),
        "old_college_code": move.old_college_code, "old_college_name": names.get(move.old_college_code, ""),
        "new_college_code": move.new_college_code, "new_college_name": names.get(move.new_college_code, ""),
        "reason": move.reason, "actor": move.actor_id, "actor_role": move.actor_role,
        "actor_role_label": ROLE_LABELS.get(move.actor_role, move.actor_role),
        "moved_at": move.created_at.isoformat(),
    }
