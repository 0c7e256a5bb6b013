"""Who may take which bed: one bed per student, one student per bed, the building's
gender policy, and nobody who has left the institution."""

from __future__ import annotations

from dataclasses import dataclass

from services.housing.domain.inventory import GENDER_POLICIES
from services.housing.domain.refusal import Refusal

# GB/T 2261.1 gender codes as roster sends them.
MALE, FEMALE = "1", "2"
GENDER_LABELS = {MALE: "男生", FEMALE: "女生"}
# The building policies each gender may live under.
_ALLOWED_POLICIES = {MALE: {"M", "mixed"}, FEMALE: {"F", "mixed"}}


@dataclass(frozen=True)
class Resident:
    """What the rules need to know of a student."""

    student_number: str
    gender: str
    left: bool


@dataclass(frozen=True)
class BedState:
    """What the rules need to know of a bed: its building's policy and who is in it."""

    label: str
    gender_policy: str
    occupant: str | None


def gender_allowed(gender: str, gender_policy: str) -> bool:
    return gender_policy in _ALLOWED_POLICIES.get(gender, set())


def check_assignment(student: Resident, bed: BedState, current_label: str | None) -> bool:
    """Whether `student` may be put in `bed`, given the label of the bed they hold now.

    Returns False when the student already holds exactly this bed (nothing to do, so a
    repeated request is harmless); raises Refusal when a rule forbids it.
    """
    if current_label == bed.label and bed.occupant == student.student_number:
        return False
    if student.left:
        raise Refusal(f"学生 {student.student_number} 已离校，不能分配床位")
    if not gender_allowed(student.gender, bed.gender_policy):
        who = GENDER_LABELS.get(student.gender, "性别不明的学生")
        where = GENDER_POLICIES.get(bed.gender_policy, bed.gender_policy)
        raise Refusal(f"床位 {bed.label} 所在楼栋为{where}，不能安排{who}入住")
    if bed.occupant is not None:
        raise Refusal(f"床位 {bed.label} 已有人入住", conflict=True)
    if current_label is not None:
        raise Refusal(f"学生 {student.student_number} 已有床位 {current_label}，每人只能有一张床位",
                      conflict=True)
    return True
