"""Bulk moves, swaps and initial assignments (H2, H3) planned as one step.

Every request is checked against the state *after* the whole batch: a bed is free if it
is empty now or its occupant is moving away in the same batch, so swaps and rotations
work. The plan lists every conflict found; a caller applies it only when there is none
(one conflict → nothing moves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.housing.domain.assignment import Resident, check_eligible, check_fit, clean_reason
from services.housing.domain.refusal import Refusal

# Conflict kinds as the preview shows them.
KIND_LABELS = {
    "student": "学生",
    "eligibility": "学籍状态",
    "bed": "床位",
    "gender": "性别",
    "college": "学院",
    "capacity": "容量",
    "double_booking": "重复占用",
}


@dataclass(frozen=True)
class PlannedBed:
    """A bed as the planner sees it: its room (label "1号楼-101"), the rules' facts, who is in it."""

    label: str
    room: str
    gender_policy: str
    college_code: str | None
    occupant: str | None


@dataclass(frozen=True)
class MoveRequest:
    """One line of a bulk change: put `student_number` in `target`, a bed label or a room
    label (then any bed of that room that is free afterwards)."""

    row: int
    student_number: str
    target: str
    override_reason: str | None = None


@dataclass(frozen=True)
class Problem:
    row: int
    field: str  # which input field it concerns: student_number, target or override_reason
    kind: str
    message: str

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


@dataclass(frozen=True)
class Move:
    row: int
    student_number: str
    from_label: str | None
    to_label: str
    override_reason: str | None = None


@dataclass
class MovePlan:
    moves: list[Move] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # already in the requested bed

    @property
    def ok(self) -> bool:
        return not self.problems


def swap_requests(first: str, first_bed: str, second: str, second_bed: str, row: int = 1) -> list[MoveRequest]:
    """A swap is two moves into each other's beds."""
    return [MoveRequest(row, first, second_bed), MoveRequest(row, second, first_bed)]


def plan_moves(
    requests: Sequence[MoveRequest],
    students: Mapping[str, Resident],
    beds: Mapping[str, PlannedBed],
    rooms: Mapping[str, Sequence[str]],
    current: Mapping[str, str],
) -> MovePlan:
    """Check `requests` together.

    `students` and `beds` (by label) hold what the requests name; `rooms` maps a room
    label to its bed labels in order; `current` maps each requested student who holds a
    bed to its label.
    """
    plan = MovePlan()
    seen: dict[str, int] = {}
    valid: list[tuple[MoveRequest, Resident, str | None]] = []
    for req in requests:
        student = students.get(req.student_number)
        if student is None:
            plan.problems.append(Problem(req.row, "student_number", "student", f"学生 {req.student_number} 不存在"))
            continue
        if req.student_number in seen:
            plan.problems.append(Problem(req.row, "student_number", "double_booking",
                                         f"学生 {req.student_number} 已在第 {seen[req.student_number]} 行出现"))
            continue
        seen[req.student_number] = req.row
        try:
            reason = clean_reason(req.override_reason)
            check_eligible(student)
        except Refusal as refusal:
            field_name = "override_reason" if not refusal.kind else "student_number"
            plan.problems.append(Problem(req.row, field_name, refusal.kind or "bed", refusal.message))
            continue
        valid.append((req, student, reason))

    # Beds whose occupant moves elsewhere in this batch are free afterwards.
    moving = {req.student_number for req, _, _ in valid}
    claimed: dict[str, int] = {}

    def free_after(bed: PlannedBed) -> bool:
        return bed.occupant is None or bed.occupant in moving

    def claim(req: MoveRequest, student: Resident, bed: PlannedBed, reason: str | None) -> None:
        try:
            check_fit(student, bed, reason)
        except Refusal as refusal:
            plan.problems.append(Problem(req.row, "target", refusal.kind, refusal.message))
            return
        claimed[bed.label] = req.row
        plan.moves.append(Move(req.row, req.student_number, current.get(req.student_number), bed.label, reason))

    by_room: list[tuple[MoveRequest, Resident, str | None]] = []
    for req, student, reason in valid:
        target = req.target.strip()
        bed = beds.get(target)
        if bed is None:
            if target in rooms:
                by_room.append((req, student, reason))
            else:
                plan.problems.append(Problem(req.row, "target", "bed", f"床位或房间 {target} 不存在"))
            continue
        if bed.occupant == req.student_number:
            plan.unchanged.append(req.student_number)
            continue
        if bed.label in claimed:
            plan.problems.append(Problem(req.row, "target", "double_booking",
                                         f"床位 {bed.label} 已由第 {claimed[bed.label]} 行安排"))
            continue
        if not free_after(bed):
            plan.problems.append(Problem(req.row, "target", "double_booking",
                                         f"床位 {bed.label} 已有学生 {bed.occupant} 入住，且其不在本次调整中"))
            continue
        claim(req, student, bed, reason)

    # Room targets take the first bed left free once the named beds are claimed.
    for req, student, reason in by_room:
        room = req.target.strip()
        labels = rooms[room]
        if current.get(req.student_number) in labels:
            plan.unchanged.append(req.student_number)
            continue
        free = [beds[label] for label in labels
                if label in beds and label not in claimed and free_after(beds[label])]
        if not free:
            plan.problems.append(Problem(req.row, "target", "capacity",
                                         f"房间 {room} 已满（共 {len(labels)} 张床位），无法再安排"))
            continue
        claim(req, student, free[0], reason)
    plan.moves.sort(key=lambda m: m.row)
    plan.problems.sort(key=lambda p: p.row)
    return plan
