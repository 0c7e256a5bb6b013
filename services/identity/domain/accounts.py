"""Account rules: valid accounts (I1), who may view one (I6), and how a student's account
follows the student's status (I5)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

# Role names as in services.common.caller (kept as plain strings so the domain stays
# free of the RPC layer; a unit test checks they match).
STUDENT = "student"
COUNSELOR = "counselor"
DEPUTY_SECRETARY = "deputy_secretary"
STUDENT_AFFAIRS = "student_affairs"
AUTHORITY = "authority"
SYSTEM = "system"

INSTITUTION_ROLES = frozenset({
    STUDENT_AFFAIRS, "academic_affairs", "it_centre", "housing_centre", "aid_operator", "aid_auditor",
})
ACCOUNT_ROLES = frozenset({STUDENT, COUNSELOR, DEPUTY_SECRETARY, AUTHORITY, *INSTITUTION_ROLES})

# The scope each role's grant has (roles table of docs/domain.md).
SCOPE_KIND_OF_ROLE = {
    STUDENT: "self",
    COUNSELOR: "classes",
    DEPUTY_SECRETARY: "college",
    AUTHORITY: "area",
    **{role: "institution" for role in INSTITUTION_ROLES},
}

STAFF_NUMBER = re.compile(r"[0-9]{7}")  # I1: issued by HR
STUDENT_NUMBER = re.compile(r"[0-9A-Za-z]{6,20}")  # as services.common.events.STUDENT_NUMBER
SCOPE_ID = re.compile(r"[0-9A-Za-z_-]{1,32}")
MAX_DISPLAY_NAME = 64

# Who may see every account: the student affairs office keeps them (I2, I4).
SEES_ALL_ACCOUNTS = frozenset({STUDENT_AFFAIRS, SYSTEM})
# Who may see the accounts of the students in their scope.
SEES_STUDENTS_IN_SCOPE = frozenset({COUNSELOR, DEPUTY_SECRETARY})


def student_scope(student_number: str) -> tuple[str, tuple[str, ...]]:
    return "self", (student_number,)


def display_name_problem(display_name: str) -> str | None:
    name = display_name.strip()
    if not name:
        return "姓名不能为空"
    if len(name) > MAX_DISPLAY_NAME:
        return f"姓名不能超过{MAX_DISPLAY_NAME}个字符"
    return None


def edit_refusal(role: str) -> str | None:
    """Students' names follow their record in roster (R12 key field), not the account page."""
    return "学生姓名随学籍信息变更，请在学籍中提交修改申请" if role == STUDENT else None


def account_problems(username: str, display_name: str, role: str, scope_kind: str,
                     scope_ids: Sequence[str]) -> list[str]:
    """What is wrong with a new account, as messages for the operator; empty when fine."""
    problems = []
    if role not in ACCOUNT_ROLES:
        return [f"未知角色：{role}"]
    if role == STUDENT:
        if not STUDENT_NUMBER.fullmatch(username):
            problems.append("学生账号须为学号（6至20位字母或数字）")
    elif not STAFF_NUMBER.fullmatch(username):
        problems.append("教职工账号须为人事处发放的7位工号")
    name_problem = display_name_problem(display_name)
    if name_problem:
        problems.append(name_problem)
    expected = SCOPE_KIND_OF_ROLE[role]
    if scope_kind != expected:
        problems.append(f"该角色的数据范围应为 {expected}")
    elif expected == "self":
        if tuple(scope_ids) != (username,):
            problems.append("学生账号的数据范围只能是本人")
    elif expected == "institution":
        if scope_ids:
            problems.append("全校范围不需要指定单位")
    elif not scope_ids:
        problems.append("请指定数据范围内的单位")
    bad_ids = [i for i in scope_ids if not SCOPE_ID.fullmatch(i)]
    if bad_ids:
        problems.append(f"数据范围代码不正确：{'、'.join(bad_ids[:5])}")
    return problems


# --- following the student's status (I5) -----------------------------------------

@dataclass(frozen=True)
class StatusChange:
    """What identity needs of roster's student.status_changed."""

    change_id: int
    left: bool
    revokes_change_id: int | None = None


@dataclass(frozen=True)
class AccountStatus:
    active: bool
    deactivated_by_event: int | None  # the status change that deactivated it, if one did
    role: str = STUDENT


class Transition(Enum):
    NONE = "none"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"


def is_newer_change(last_change_id: int | None, change_id: int) -> bool:
    """Roster numbers its changes in order; an older one arriving late is already outdated."""
    return last_change_id is None or change_id > last_change_id


def transition_for(account: AccountStatus, change: StatusChange) -> Transition:
    """Leaving deactivates an active account; a revocation of exactly the change that
    deactivated it brings it back. Accounts disabled for any other reason (by staff, or
    by a different change) stay as they are, and so does a staff account whose number
    happens to equal the student's."""
    if account.role != STUDENT:
        return Transition.NONE
    if change.left:
        return Transition.DEACTIVATE if account.active else Transition.NONE
    if (not account.active and account.deactivated_by_event is not None
            and change.revokes_change_id == account.deactivated_by_event):
        return Transition.REACTIVATE
    return Transition.NONE


# --- who may view an account (I6) ------------------------------------------------

@dataclass(frozen=True)
class Viewer:
    username: str
    role: str
    scope_kind: str
    scope_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class StudentPlace:
    """Where a student belongs, from identity's read copy of the roster."""

    college_code: str
    class_code: str


def sees_all_accounts(viewer: Viewer) -> bool:
    return viewer.role in SEES_ALL_ACCOUNTS


def _scope_covers(viewer: Viewer, place: StudentPlace) -> bool:
    if viewer.scope_kind == "institution":
        return True
    if viewer.scope_kind == "college":
        return place.college_code in viewer.scope_ids
    if viewer.scope_kind == "classes":
        return place.class_code in viewer.scope_ids
    return False


def may_view_account(viewer: Viewer, username: str, role: str, place: StudentPlace | None) -> bool:
    """Self; student affairs and the system: every account; counselors and deputy
    secretaries: the accounts of students in their scope; anyone else: only their own."""
    if viewer.username == username or sees_all_accounts(viewer):
        return True
    if viewer.role in SEES_STUDENTS_IN_SCOPE and role == STUDENT and place is not None:
        return _scope_covers(viewer, place)
    return False


# --- who may reset a password, and who administers accounts (I2, I4) -------------

ADMINISTERS_ACCOUNTS = frozenset({STUDENT_AFFAIRS, SYSTEM})


def may_reset_password(viewer: Viewer, username: str, role: str, place: StudentPlace | None) -> bool:
    """I4: a student's password by their counselor (or the deputy secretary of their college);
    staff passwords by the student affairs office; the system any. Nobody resets their own
    (they change it) and nobody else resets anything."""
    if viewer.role == SYSTEM:
        return True
    if viewer.username == username:
        return False
    if role == STUDENT:
        return viewer.role in SEES_STUDENTS_IN_SCOPE and place is not None and _scope_covers(viewer, place)
    return viewer.role == STUDENT_AFFAIRS


def administers_accounts(viewer: Viewer) -> bool:
    """Create, disable, re-enable accounts and see every one (I2)."""
    return viewer.role in ADMINISTERS_ACCOUNTS
