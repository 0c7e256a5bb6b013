"""Who may give which grant: never beyond the granter's own role and scope."""

from __future__ import annotations

import pytest

from services.identity.domain.accounts import Viewer
from services.identity.domain.grants import Grant, college_of_class, effective_scope, grant_problems, may_grant

REGISTRAR = Viewer("1000001", "student_affairs", "institution")
DEPUTY_01 = Viewer("1000002", "deputy_secretary", "college", ("01",))
COUNSELOR = Viewer("1000004", "counselor", "classes", ("2023010101",))
HOUSING = Viewer("1000007", "housing_centre", "institution")
SYSTEM = Viewer("system:test", "system", "institution")

CLASS_01 = Grant("counselor", "classes", ("2023010101", "2023010102"))
CLASS_02 = Grant("counselor", "classes", ("2023020101",))
MIXED = Grant("counselor", "classes", ("2023010101", "2023020101"))
COLLEGE_01 = Grant("deputy_secretary", "college", ("01",))
HOUSING_ALL = Grant("housing_centre", "institution")
AREA = Grant("authority", "area", ("340100",))


@pytest.mark.parametrize(("granter", "grant", "allowed"), [
    (REGISTRAR, CLASS_01, True), (REGISTRAR, COLLEGE_01, True), (REGISTRAR, HOUSING_ALL, True),
    (REGISTRAR, AREA, False),  # an authority's area is not the school's to give
    (SYSTEM, AREA, True),
    (DEPUTY_01, CLASS_01, True),
    (DEPUTY_01, CLASS_02, False), (DEPUTY_01, MIXED, False),  # classes of another college
    (DEPUTY_01, COLLEGE_01, False), (DEPUTY_01, HOUSING_ALL, False),  # more than a counselor
    (COUNSELOR, CLASS_01, False), (HOUSING, HOUSING_ALL, False),
])
def test_granting_is_checked_against_the_granters_own_scope(granter: Viewer, grant: Grant, allowed: bool) -> None:
    assert (may_grant(granter, "1000010", grant) is None) is allowed


def test_nobody_grants_to_themselves() -> None:
    assert may_grant(REGISTRAR, "1000001", HOUSING_ALL) == "不能给自己授权"


@pytest.mark.parametrize(("grant", "message"), [
    (Grant("student", "self", ("x",)), "学生角色随学籍自动授予"),
    (Grant("counselor", "college", ("01",)), "数据范围应为 classes"),
    (Grant("counselor", "classes", ()), "请指定数据范围内的单位"),
    (Grant("counselor", "classes", ("20230101",)), "班级代码应为10位数字"),
    (Grant("counselor", "classes", ("2023010101", "2023010101")), "重复"),
    (Grant("housing_centre", "institution", ("01",)), "全校范围不需要指定单位"),
    (Grant("rector", "institution"), "未知角色"),
])
def test_invalid_grants(grant: Grant, message: str) -> None:
    assert any(message in p for p in grant_problems(grant))


def test_several_grants_of_one_role_add_up_and_other_roles_stay_apart() -> None:
    grants = [CLASS_01, CLASS_02, HOUSING_ALL]
    assert effective_scope("counselor", grants) == ("classes", ("2023010101", "2023010102", "2023020101"))
    assert effective_scope("housing_centre", grants) == ("institution", ())
    assert effective_scope("deputy_secretary", grants) is None


def test_college_of_class_follows_the_student_number_layout() -> None:
    assert college_of_class("2023010101") == "01"
    assert college_of_class("ABC") is None
