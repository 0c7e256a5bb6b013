"""Who may take which bed: one bed per student, one student per bed, the building's
gender policy, the room's college (or an explicit override with a reason), and only
enrolled students."""

from __future__ import annotations

from dataclasses import dataclass

from services.housing.domain.inventory import GENDER_POLICIES
from services.housing.domain.refusal import Refusal

# GB/T 2261.1 gender codes as roster sends them.
MALE, FEMALE = "1", "2"
GENDER_LABELS = {MALE: "男生", FEMALE: "女生"}
# The building policies each gender may live under.
_ALLOWED_POLICIES = {MALE: {"M", "mixed"}, FEMALE: {"F", "mixed"}}
# Roster's status of a student on the register and on campus; others (suspended, not
# reported…) get no new bed.
ENROLLED = "enrolled"
MAX_REASON = 200


@dataclass(frozen=True)
class Resident:
    """What the rules need to know of a student."""

    student_number: str
    gender: str
    left: bool
    college_code: str = ""
    status: str = ENROLLED
    class_code: str = ""


@dataclass(frozen=True)
class BedState:
    """What the rules need to know of a bed: its building's policy, the college its room
    is allocated to (None: open to every college) and who is in it."""

    label: str
    gender_policy: str
    occupant: str | None
    college_code: str | None = None


def gender_allowed(gender: str, gender_policy: str) -> bool:
    return gender_policy in _ALLOWED_POLICIES.get(gender, set())


def clean_reason(reason: object) -> str | None:
    """An override reason as stored: stripped text, or None when none was given."""
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise Refusal("调整原因必须是文字")
    text = reason.strip()
    if len(text) > MAX_REASON:
        raise Refusal(f"调整原因最多 {MAX_REASON} 个字")
    return text or None


def check_eligible(student: Resident) -> None:
    """Only students on the register and on campus get a bed."""
    if student.left:
        raise Refusal(f"学生 {student.student_number} 已离校，不能分配床位", kind="eligibility")
    if student.status != ENROLLED:
        raise Refusal(f"学生 {student.student_number} 当前学籍状态不是在读，不能分配床位", kind="eligibility")


def check_fit(student: Resident, bed: BedState, override_reason: str | None = None) -> None:
    """The rules about the bed itself: gender policy, then the room's college."""
    if not gender_allowed(student.gender, bed.gender_policy):
        who = GENDER_LABELS.get(student.gender, "性别不明的学生")
        where = GENDER_POLICIES.get(bed.gender_policy, bed.gender_policy)
        raise Refusal(f"床位 {bed.label} 所在楼栋为{where}，不能安排{who}入住", kind="gender")
    if bed.college_code is not None and bed.college_code != student.college_code and not override_reason:
        raise Refusal(f"床位 {bed.label} 分配给学院 {bed.college_code}，学生 {student.student_number} "
                      f"属于学院 {student.college_code}；如需跨学院安排，请填写调整原因", kind="college")


def check_assignment(student: Resident, bed: BedState, current_label: str | None,
                     override_reason: str | None = None) -> bool:
    """Whether `student` may be put in `bed`, given the label of the bed they hold now.

    Returns False when the student already holds exactly this bed (nothing to do, so a
    repeated request is harmless); raises Refusal when a rule forbids it.
    """
    if current_label == bed.label and bed.occupant == student.student_number:
        return False
    check_eligible(student)
    check_fit(student, bed, override_reason)
    if bed.occupant is not None:
        raise Refusal(f"床位 {bed.label} 已有人入住", conflict=True, kind="double_booking")
    if current_label is not None:
        raise Refusal(f"学生 {student.student_number} 已有床位 {current_label}，每人只能有一张床位",
                      conflict=True, kind="double_booking")
    return True
