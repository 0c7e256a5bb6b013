"""调班 (R9): who may move a student between classes.

Within one counselor's classes → the counselor; between counselors' classes of one college →
the college's deputy secretary; between colleges → the student affairs office. Roster does not
know which counselor holds which class: a counselor's scope (the classes granted to them) is
the only evidence that both classes are "theirs".
"""

from __future__ import annotations

from services.common.caller import COUNSELOR, DEPUTY_SECRETARY, ROLE_LABELS, STUDENT_AFFAIRS, SYSTEM, Scope
from services.roster.domain import status as st

# Only students still on the register move; those who left keep the class they left from.
MOVABLE = frozenset({st.ENROLLED, st.SUSPENDED, st.VISITING})
# The roles that may move anyone (the system: tools and seeding, as everywhere).
ANYWHERE = frozenset({STUDENT_AFFAIRS, SYSTEM})
MOVERS = frozenset({COUNSELOR, DEPUTY_SECRETARY, *ANYWHERE})


def required_role(old_college: str, new_college: str, *, one_counselor: bool) -> str:
    """The lowest role that may make the move; `one_counselor`: both classes are one counselor's."""
    if old_college != new_college:
        return STUDENT_AFFAIRS
    return COUNSELOR if one_counselor else DEPUTY_SECRETARY


def refusal(caller_role: str, caller_scope: Scope, old_class: str, new_class: str,
            old_college: str, new_college: str) -> str | None:
    """Why this caller may not move a student from `old_class` to `new_class`, or None (→ Forbidden)."""
    if caller_role in ANYWHERE:
        return None
    if caller_role == COUNSELOR:
        mine = caller_scope.ids if caller_scope.kind == "classes" else ()
        if old_class not in mine:
            return "该学生不在您的数据权限范围内"
        if new_class in mine and new_college == old_college:  # across colleges is never a counselor's
            return None
    elif caller_role == DEPUTY_SECRETARY:
        colleges = caller_scope.ids if caller_scope.kind == "college" else ()
        if old_college not in colleges:
            return "该学生不在您的数据权限范围内"
        if new_college == old_college:
            return None
    else:
        return f"角色“{ROLE_LABELS.get(caller_role, caller_role)}”不能办理调班"
    needed = required_role(old_college, new_college, one_counselor=False)
    if needed == STUDENT_AFFAIRS:
        return "跨学院调班须由学生处办理"
    return "调入班级不在您负责的班级内：同一学院不同辅导员的班级之间调班须由党总支副书记办理"


def move_problem(status: str, old_class: str, new_class: str) -> str | None:
    """What about the student or the target stands in the way, or None (→ Invalid)."""
    if old_class == new_class:
        return f"学生已在班级 {new_class}"
    if status not in MOVABLE:
        return f"学籍状态为“{st.label(status)}”，不能调班（仅限：在读、休学、借读）"
    return None


def college_of(unit: str, parents: dict[str, tuple[str, str | None]]) -> str | None:
    """The college above `unit` in the org tree ({code: (kind, parent_code)}), or None."""
    seen: set[str] = set()
    code: str | None = unit
    while code is not None and code not in seen:
        seen.add(code)
        found = parents.get(code)
        if found is None:
            return None
        kind, parent = found
        if kind == "college":
            return code
        code = parent
    return None
