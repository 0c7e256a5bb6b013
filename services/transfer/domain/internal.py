"""Changes inside the institution (T7): change of major or of study centre, approved by the unit the
student leaves, then by the unit joined; then roster moves the student to the new class.

Units are colleges (学院; a study centre is a college-level unit of the org tree): the approver of each
is that college's deputy secretary (党总支副书记), or the student affairs office for any. Plain rules.
"""

from __future__ import annotations

from services.common.caller import (
    ACADEMIC_AFFAIRS,
    COUNSELOR,
    DEPUTY_SECRETARY,
    ROLE_LABELS,
    STUDENT_AFFAIRS,
    SYSTEM,
    Scope,
)

MAJOR, STUDY_CENTRE = "major", "study_centre"
KINDS = {MAJOR: "转专业", STUDY_CENTRE: "转学习中心"}
PENDING_LEFT, PENDING_JOINED, APPROVED, REJECTED = "pending_left", "pending_joined", "approved", "rejected"
STATES = {PENDING_LEFT: "待调出单位审核", PENDING_JOINED: "待调入单位审核", APPROVED: "已通过", REJECTED: "未通过"}
OPEN = (PENDING_LEFT, PENDING_JOINED)
# Students still on the register move (the statuses roster's class moves accept).
MOVABLE = frozenset({"enrolled", "suspended", "visiting"})
FILERS = frozenset({STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, COUNSELOR, DEPUTY_SECRETARY, SYSTEM})
ANY_UNIT = frozenset({STUDENT_AFFAIRS, SYSTEM})
MAX_REASON = 500


class InternalRefusal(Exception):
    """`forbidden`: the caller may not (→ Forbidden); else the request itself is wrong (→ Invalid)."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.forbidden = forbidden


def kind_label(kind: str) -> str:
    return KINDS.get(kind, kind)


def state_label(state: str) -> str:
    return STATES.get(state, state)


def check_reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise InternalRefusal("请填写异动原因")
    if len(text) > MAX_REASON:
        raise InternalRefusal(f"异动原因不能超过 {MAX_REASON} 字")
    return text


def filing_refusal(role: str, scope: Scope, student_number: str, college: str, klass: str) -> str | None:
    """Student affairs and academic affairs file for anyone; a counselor or deputy secretary for the
    students of their scope (their classes, their college)."""
    if role not in FILERS:
        return f"角色“{ROLE_LABELS.get(role, role)}”不能申请校内异动"
    if role in (COUNSELOR, DEPUTY_SECRETARY) and not scope.covers_student(student_number, college, klass):
        return f"学生 {student_number} 不在您的数据权限范围内"
    return None


def change_problem(kind: str, status: str, from_class: str, to_class: str, from_major: str | None,
                   to_major: str | None, from_college: str, to_college: str) -> str | None:
    """What about the student or the target stands in the way of the change, or None."""
    if kind not in KINDS:
        return "异动类型应为转专业（major）或转学习中心（study_centre）"
    if status not in MOVABLE:
        return "学籍状态不是在读、休学或借读，不能办理校内异动"
    if from_class == to_class:
        return f"学生已在班级 {to_class}"
    if kind == MAJOR and from_major is not None and from_major == to_major:
        return "调入班级与当前班级属于同一专业：请办理调班"
    if kind == STUDY_CENTRE and from_college == to_college:
        return "调入班级与当前班级属于同一学习中心：请办理调班或转专业"
    return None


def awaiting_unit(state: str, from_unit: str, to_unit: str) -> str | None:
    """The unit whose approval the change waits for."""
    return {PENDING_LEFT: from_unit, PENDING_JOINED: to_unit}.get(state)


def decider_refusal(role: str, scope: Scope, state: str, from_unit: str, to_unit: str) -> str | None:
    """Whether the caller may decide the change's current stage: the waiting unit's deputy secretary,
    or student affairs."""
    unit = awaiting_unit(state, from_unit, to_unit)
    if unit is None:
        return f"该异动已{state_label(state)}，不能再审核"
    if role in ANY_UNIT:
        return None
    if role == DEPUTY_SECRETARY and scope.kind == "college" and unit in scope.ids:
        return None
    which = "调出" if state == PENDING_LEFT else "调入"
    return f"应由{which}单位（{unit}）的党总支副书记或学生处审核"


def next_state(state: str, approve: bool) -> str:
    if state not in OPEN:
        raise InternalRefusal(f"该异动已{state_label(state)}，不能再审核")
    if not approve:
        return REJECTED
    return PENDING_JOINED if state == PENDING_LEFT else APPROVED

