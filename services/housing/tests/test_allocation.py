"""Automatic allocation of an intake: rules kept, classmates side by side."""

from __future__ import annotations

from collections import defaultdict

from services.housing.domain.allocation import FreeBed, allocate
from services.housing.domain.assignment import Resident, gender_allowed


def intake(college: str, klass: str, gender: str, count: int, start: int = 1) -> list[Resident]:
    return [Resident(f"{klass}{n:02d}", gender, False, college, class_code=klass) for n in range(start, start + count)]


def rooms(building: str, policy: str, college: str | None, count: int, capacity: int = 4,
          first: int = 101) -> list[FreeBed]:
    return [FreeBed(f"{building}-{first + r}-{b}", f"{building}-{first + r}", policy, college)
            for r in range(count) for b in range(1, capacity + 1)]


def test_every_placement_keeps_gender_college_and_one_bed_each() -> None:
    students = intake("01", "2026010101", "1", 30) + intake("01", "2026010102", "2", 26) \
        + intake("02", "2026020101", "1", 18)
    beds = rooms("1号楼", "M", "01", 10) + rooms("2号楼", "F", "01", 8) + rooms("3号楼", "M", "02", 5) \
        + rooms("4号楼", "mixed", None, 3)
    by_label = {b.label: b for b in beds}
    people = {s.student_number: s for s in students}
    result = allocate(students, beds)
    assert len(result.placed) == len(students) and result.unplaced == []
    assert len({label for _, label in result.placed}) == len(result.placed)
    assert len({number for number, _ in result.placed}) == len(result.placed)
    for number, label in result.placed:
        bed, student = by_label[label], people[number]
        assert gender_allowed(student.gender, bed.gender_policy)
        assert bed.college_code in (None, student.college_code)


def test_classmates_fill_consecutive_rooms() -> None:
    students = intake("01", "2026010101", "1", 10) + intake("01", "2026010102", "1", 7)
    result = allocate(students, rooms("1号楼", "M", "01", 6))
    rooms_of: dict[str, set[str]] = defaultdict(set)
    for number, label in result.placed:
        rooms_of[number[:10]].add(label.rsplit("-", 1)[0])
    # 10 students in rooms of 4 → 3 rooms; the 7 of the next class share at most one with them
    assert len(rooms_of["2026010101"]) == 3
    assert len(rooms_of["2026010102"]) <= 3
    assert len(rooms_of["2026010101"] & rooms_of["2026010102"]) <= 1


def test_a_mixed_building_room_never_mixes_genders() -> None:
    students = intake("01", "2026010101", "1", 3) + intake("01", "2026010102", "2", 3)
    result = allocate(students, rooms("4号楼", "mixed", None, 2))
    genders: dict[str, set[str]] = defaultdict(set)
    people = {s.student_number: s for s in students}
    for number, label in result.placed:
        genders[label.rsplit("-", 1)[0]].add(people[number].gender)
    assert len(result.placed) == 6 and all(len(g) == 1 for g in genders.values())


def test_a_room_already_lived_in_by_the_other_gender_is_skipped() -> None:
    students = intake("01", "2026010101", "2", 2)
    result = allocate(students, rooms("4号楼", "mixed", None, 2), {"4号楼-101": {"1"}})
    assert {label.rsplit("-", 1)[0] for _, label in result.placed} == {"4号楼-102"}


def test_students_without_a_fitting_bed_or_not_enrolled_are_reported() -> None:
    students = intake("02", "2026020101", "2", 2) + [Resident("202601010199", "1", False, "01", "suspended")]
    result = allocate(students, rooms("1号楼", "M", "01", 1))
    assert result.placed == []
    assert sorted(why for _, why in result.unplaced) == [
        "学生 202601010199 当前学籍状态不是在读，不能分配床位",
        "没有符合学院和性别要求的空床位", "没有符合学院和性别要求的空床位"]
