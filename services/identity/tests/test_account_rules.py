"""Account rules: valid accounts (I1), deactivation and reactivation (I5), who may view (I6)."""

from __future__ import annotations

import pytest

from services.common import caller as common_roles
from services.identity.domain.accounts import (
    ACCOUNT_ROLES,
    SCOPE_KIND_OF_ROLE,
    AccountStatus,
    StatusChange,
    StudentPlace,
    Transition,
    Viewer,
    account_problems,
    is_newer_change,
    may_view_account,
    sees_all_accounts,
    transition_for,
)


def test_role_names_match_the_shared_caller_roles() -> None:
    assert ACCOUNT_ROLES == set(common_roles.ROLES)
    assert set(SCOPE_KIND_OF_ROLE) == set(common_roles.ROLES)
    assert sees_all_accounts(Viewer("x", common_roles.SYSTEM, "institution"))
    assert sees_all_accounts(Viewer("x", common_roles.STUDENT_AFFAIRS, "institution"))


# --- valid accounts ----------------------------------------------------------------

def test_valid_accounts_have_no_problems() -> None:
    assert account_problems("1000004", "王老师", "counselor", "classes", ["2023010101"]) == []
    assert account_problems("1000002", "李主任", "deputy_secretary", "college", ["01"]) == []
    assert account_problems("1000001", "学生处", "student_affairs", "institution", []) == []
    assert account_problems("202301010105", "李娜", "student", "self", ["202301010105"]) == []
    assert account_problems("1000009", "教育局", "authority", "area", ["340102"]) == []


@pytest.mark.parametrize("username", ["100001", "10000011", "A000001", "１０００００１"])
def test_staff_use_seven_digit_staff_numbers(username: str) -> None:
    assert account_problems(username, "王老师", "counselor", "classes", ["2023010101"]) == [
        "教职工账号须为人事处发放的7位工号"]


def test_students_use_their_student_number() -> None:
    assert "学生账号须为学号（6至20位字母或数字）" in account_problems(
        "2023-01", "李娜", "student", "self", ["2023-01"])


def test_unknown_role_and_system_cannot_be_granted() -> None:
    assert account_problems("1000001", "x", "system", "institution", []) == ["未知角色：system"]
    assert account_problems("1000001", "x", "root", "institution", []) == ["未知角色：root"]


@pytest.mark.parametrize(("role", "kind", "ids", "message"), [
    ("counselor", "institution", [], "该角色的数据范围应为 classes"),
    ("counselor", "classes", [], "请指定数据范围内的单位"),
    ("student_affairs", "institution", ["01"], "全校范围不需要指定单位"),
    ("deputy_secretary", "college", ["0 1"], "数据范围代码不正确：0 1"),
])
def test_scope_must_fit_the_role(role: str, kind: str, ids: list[str], message: str) -> None:
    assert message in account_problems("1000004", "王老师", role, kind, ids)


def test_student_scope_is_only_self() -> None:
    assert account_problems("202301010105", "李娜", "student", "self", ["202301010106"]) == [
        "学生账号的数据范围只能是本人"]


def test_display_name_is_required_and_bounded() -> None:
    assert account_problems("1000001", "  ", "student_affairs", "institution", []) == ["姓名不能为空"]
    assert account_problems("1000001", "名" * 65, "student_affairs", "institution", []) == [
        "姓名不能超过64个字符"]


# --- following the student's status ------------------------------------------------

ACTIVE = AccountStatus(active=True, deactivated_by_event=None)


def test_leaving_deactivates_an_active_account() -> None:
    assert transition_for(ACTIVE, StatusChange(7, left=True)) is Transition.DEACTIVATE


def test_leaving_again_changes_nothing() -> None:
    gone = AccountStatus(active=False, deactivated_by_event=7)
    assert transition_for(gone, StatusChange(9, left=True)) is Transition.NONE


def test_revoking_the_deactivating_change_reactivates() -> None:
    gone = AccountStatus(active=False, deactivated_by_event=7)
    assert transition_for(gone, StatusChange(8, left=False, revokes_change_id=7)) is Transition.REACTIVATE


def test_revoking_another_change_does_not_reactivate() -> None:
    gone = AccountStatus(active=False, deactivated_by_event=7)
    assert transition_for(gone, StatusChange(8, left=False, revokes_change_id=6)) is Transition.NONE
    assert transition_for(gone, StatusChange(8, left=False)) is Transition.NONE


def test_accounts_disabled_by_staff_stay_disabled() -> None:
    disabled = AccountStatus(active=False, deactivated_by_event=None)
    assert transition_for(disabled, StatusChange(8, left=False, revokes_change_id=7)) is Transition.NONE


def test_a_change_that_does_not_leave_leaves_an_active_account_alone() -> None:
    assert transition_for(ACTIVE, StatusChange(3, left=False)) is Transition.NONE
    assert transition_for(ACTIVE, StatusChange(8, left=False, revokes_change_id=7)) is Transition.NONE


def test_staff_accounts_never_follow_student_events() -> None:
    teacher = AccountStatus(active=True, deactivated_by_event=None, role="counselor")
    assert transition_for(teacher, StatusChange(7, left=True)) is Transition.NONE


def test_older_changes_arriving_late_are_outdated() -> None:
    assert is_newer_change(None, 1)
    assert is_newer_change(7, 8)
    assert not is_newer_change(8, 7)
    assert not is_newer_change(8, 8)


# --- who may view an account --------------------------------------------------------

IN_CLASS = StudentPlace(college_code="01", class_code="2023010101")
OTHER_COLLEGE = StudentPlace(college_code="02", class_code="2023020101")

STUDENT = Viewer("202301010105", "student", "self", ("202301010105",))
COUNSELOR = Viewer("1000004", "counselor", "classes", ("2023010101",))
DEPUTY = Viewer("1000002", "deputy_secretary", "college", ("01",))
REGISTRAR = Viewer("1000001", "student_affairs", "institution")
SYSTEM = Viewer("system:gateway", "system", "institution")
HOUSING = Viewer("1000007", "housing_centre", "institution")


@pytest.mark.parametrize(("viewer", "username", "role", "place", "allowed"), [
    (STUDENT, "202301010105", "student", IN_CLASS, True),          # self
    (STUDENT, "202301010106", "student", IN_CLASS, False),         # a classmate
    (COUNSELOR, "202301010106", "student", IN_CLASS, True),        # own class
    (COUNSELOR, "202302010101", "student", OTHER_COLLEGE, False),  # another class
    (COUNSELOR, "202301010106", "student", None, False),           # not in the read copy
    (COUNSELOR, "1000005", "counselor", None, False),              # a colleague
    (COUNSELOR, "1000004", "counselor", None, True),               # self
    (DEPUTY, "202301010106", "student", IN_CLASS, True),           # own college
    (DEPUTY, "202302010101", "student", OTHER_COLLEGE, False),
    (REGISTRAR, "202302010101", "student", OTHER_COLLEGE, True),
    (REGISTRAR, "1000004", "counselor", None, True),
    (SYSTEM, "1000004", "counselor", None, True),
    (HOUSING, "202301010106", "student", IN_CLASS, False),         # institution scope, not an account keeper
    (HOUSING, "1000007", "housing_centre", None, True),
])
def test_who_may_view_an_account(viewer: Viewer, username: str, role: str, place: StudentPlace | None,
                                 allowed: bool) -> None:
    assert may_view_account(viewer, username, role, place) is allowed
