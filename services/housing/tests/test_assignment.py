"""Assignment rules: one bed per student, one student per bed, gender policy, not left."""

from __future__ import annotations

import pytest

from services.housing.domain.assignment import BedState, Resident, check_assignment, clean_reason, gender_allowed
from services.housing.domain.refusal import Refusal

MAN = Resident("202301010101", "1", left=False)
WOMAN = Resident("202301010102", "2", left=False)
FREE_M = BedState("1号楼-101-1", "M", None)


@pytest.mark.parametrize(("gender", "policy", "allowed"), [
    ("1", "M", True), ("1", "mixed", True), ("1", "F", False),
    ("2", "F", True), ("2", "mixed", True), ("2", "M", False),
    ("9", "mixed", False),
])
def test_gender_policy(gender: str, policy: str, allowed: bool) -> None:
    assert gender_allowed(gender, policy) is allowed


def test_a_free_bed_of_the_right_building_is_assigned() -> None:
    assert check_assignment(MAN, FREE_M, None) is True
    assert check_assignment(WOMAN, BedState("3号楼-201-1", "mixed", None), None) is True


def test_a_woman_cannot_take_a_bed_in_a_mens_building() -> None:
    with pytest.raises(Refusal) as refused:
        check_assignment(WOMAN, FREE_M, None)
    assert refused.value.message == "床位 1号楼-101-1 所在楼栋为男生楼，不能安排女生入住"
    assert refused.value.conflict is False


def test_a_man_cannot_take_a_bed_in_a_womens_building() -> None:
    with pytest.raises(Refusal, match="所在楼栋为女生楼，不能安排男生入住"):
        check_assignment(MAN, BedState("2号楼-101-1", "F", None), None)


def test_one_student_per_bed() -> None:
    with pytest.raises(Refusal) as refused:
        check_assignment(MAN, BedState("1号楼-101-1", "M", "202301010199"), None)
    assert refused.value.message == "床位 1号楼-101-1 已有人入住"
    assert refused.value.conflict is True


def test_one_bed_per_student() -> None:
    with pytest.raises(Refusal) as refused:
        check_assignment(MAN, FREE_M, "1号楼-102-3")
    assert refused.value.message == "学生 202301010101 已有床位 1号楼-102-3，每人只能有一张床位"
    assert refused.value.conflict is True


def test_a_student_who_left_gets_no_bed() -> None:
    gone = Resident("202301010101", "1", left=True)
    with pytest.raises(Refusal, match="学生 202301010101 已离校，不能分配床位") as refused:
        check_assignment(gone, FREE_M, None)
    assert refused.value.conflict is False


def test_asking_again_for_the_bed_already_held_changes_nothing() -> None:
    held = BedState("1号楼-101-1", "M", MAN.student_number)
    assert check_assignment(MAN, held, "1号楼-101-1") is False


# --- college allocation and enrolment ------------------------------------------------------
CS_MAN = Resident("202301010101", "1", left=False, college_code="01")
MATHS_ROOM_BED = BedState("1号楼-201-1", "M", None, college_code="02")


def test_a_room_allocated_to_another_college_needs_a_reason() -> None:
    with pytest.raises(Refusal) as refused:
        check_assignment(CS_MAN, MATHS_ROOM_BED, None)
    assert refused.value.kind == "college"
    assert "分配给学院 02" in refused.value.message and "请填写调整原因" in refused.value.message
    assert check_assignment(CS_MAN, MATHS_ROOM_BED, None, override_reason="学院宿舍已满") is True


def test_own_college_rooms_and_unallocated_rooms_take_the_student() -> None:
    assert check_assignment(CS_MAN, BedState("1号楼-201-1", "M", None, college_code="01"), None) is True
    assert check_assignment(CS_MAN, BedState("1号楼-201-1", "M", None, college_code=None), None) is True


@pytest.mark.parametrize("status", ["suspended", "not_reported", "military"])
def test_only_enrolled_students_get_a_bed(status: str) -> None:
    away = Resident("202301010101", "1", left=False, status=status)
    with pytest.raises(Refusal, match="当前学籍状态不是在读") as refused:
        check_assignment(away, FREE_M, None)
    assert refused.value.kind == "eligibility"


def test_override_reasons_are_trimmed_and_bounded() -> None:
    assert clean_reason("  学院宿舍已满 ") == "学院宿舍已满"
    assert clean_reason("   ") is None and clean_reason(None) is None
    with pytest.raises(Refusal, match="最多 200 个字"):
        clean_reason("长" * 201)
