"""Bulk moves planned as one step: every conflict found, swaps and rotations allowed."""

from __future__ import annotations

from services.housing.domain.assignment import Resident
from services.housing.domain.moves import MoveRequest, PlannedBed, plan_moves, swap_requests

A, B, C, W = "202301010101", "202301010103", "202301010105", "202301010102"
STUDENTS = {
    A: Resident(A, "1", False, "01", class_code="2023010101"),
    B: Resident(B, "1", False, "01", class_code="2023010101"),
    C: Resident(C, "1", False, "01", class_code="2023010101"),
    W: Resident(W, "2", False, "01", class_code="2023010101"),
}


def bed(label: str, occupant: str | None = None, policy: str = "M", college: str | None = "01") -> PlannedBed:
    return PlannedBed(label, label.rsplit("-", 1)[0], policy, college, occupant)


BEDS = {b.label: b for b in (
    bed("1号楼-101-1", A), bed("1号楼-101-2", B), bed("1号楼-102-1"), bed("1号楼-102-2"),
    bed("1号楼-201-1", college="02"), bed("2号楼-101-1", policy="F"), bed("1号楼-103-1", "202301010199"),
)}
ROOMS = {"1号楼-102": ["1号楼-102-1", "1号楼-102-2"], "1号楼-103": ["1号楼-103-1"]}
CURRENT = {A: "1号楼-101-1", B: "1号楼-101-2"}


def plan(*requests: MoveRequest):  # type: ignore[no-untyped-def]
    return plan_moves(list(requests), STUDENTS, BEDS, ROOMS, CURRENT)


def test_a_swap_is_allowed_because_both_beds_are_vacated() -> None:
    result = plan(*swap_requests(A, "1号楼-101-1", B, "1号楼-101-2"))
    assert result.ok
    assert {(m.student_number, m.from_label, m.to_label) for m in result.moves} == {
        (A, "1号楼-101-1", "1号楼-101-2"), (B, "1号楼-101-2", "1号楼-101-1")}


def test_a_rotation_of_three_is_allowed() -> None:
    result = plan(MoveRequest(1, A, "1号楼-101-2"), MoveRequest(2, B, "1号楼-102-1"),
                  MoveRequest(3, C, "1号楼-101-1"))
    assert result.ok and len(result.moves) == 3


def test_every_kind_of_conflict_is_listed_with_its_row() -> None:
    result = plan(
        MoveRequest(1, W, "1号楼-102-1"),                 # gender
        MoveRequest(2, C, "1号楼-201-1"),                 # college, no reason
        MoveRequest(3, A, "1号楼-103"),                   # capacity: its only bed stays taken
        MoveRequest(4, B, "1号楼-103-1"),                 # double booking: occupant not moving
        MoveRequest(5, "202301019999", "1号楼-102-2"),    # unknown student
        MoveRequest(6, A, "1号楼-102-2"),                 # student twice
        MoveRequest(7, "202301010107", "9号楼-1-1"),      # unknown student first
    )
    assert not result.ok
    assert [(p.row, p.kind, p.field) for p in result.problems] == [
        (1, "gender", "target"), (2, "college", "target"), (3, "capacity", "target"),
        (4, "double_booking", "target"), (5, "student", "student_number"),
        (6, "double_booking", "student_number"), (7, "student", "student_number")]
    assert result.problems[0].kind_label == "性别"
    assert "已有学生 202301010199 入住" in result.problems[3].message


def test_two_rows_wanting_one_bed_is_double_booking() -> None:
    result = plan(MoveRequest(1, A, "1号楼-102-1"), MoveRequest(2, B, "1号楼-102-1"))
    [problem] = result.problems
    assert (problem.row, problem.kind, problem.message) == (2, "double_booking", "床位 1号楼-102-1 已由第 1 行安排")


def test_a_room_target_takes_the_free_beds_in_order() -> None:
    result = plan(MoveRequest(1, A, "1号楼-102"), MoveRequest(2, B, "1号楼-102"), MoveRequest(3, C, "1号楼-102"))
    assert [m.to_label for m in result.moves] == ["1号楼-102-1", "1号楼-102-2"]
    [problem] = result.problems
    assert (problem.row, problem.kind) == (3, "capacity")


def test_an_override_reason_admits_another_colleges_room() -> None:
    result = plan(MoveRequest(1, C, "1号楼-201-1", "学院宿舍已满"))
    assert result.ok and result.moves[0].override_reason == "学院宿舍已满"


def test_asking_for_the_bed_already_held_is_no_move() -> None:
    result = plan(MoveRequest(1, A, "1号楼-101-1"))
    assert result.ok and result.moves == [] and result.unchanged == [A]


def test_students_who_left_or_are_not_enrolled_cannot_move_in() -> None:
    gone = {**STUDENTS, C: Resident(C, "1", True, "01")}
    result = plan_moves([MoveRequest(1, C, "1号楼-102-1")], gone, BEDS, ROOMS, CURRENT)
    assert [(p.kind, p.field) for p in result.problems] == [("eligibility", "student_number")]
