"""R3: the academic affairs office's mapping file replaces provisional numbers (考生号) in one batch.

Every check of a mapping row, without a database: the use case (`services/roster/number_mapping.py`)
loads the students the file names and hands them over as `Holder`s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.roster.domain.students import EXAM_NUMBER, RecordError, check_student_number, is_provisional

# Row outcomes of a clean file.
CHANGE, UNCHANGED = "change", "unchanged"


@dataclass(frozen=True)
class MappingRow:
    excel_row: int
    exam_number: str  # 考生号: the student's provisional number
    new_number: str  # 学号 issued by the academic affairs office
    name: str


@dataclass(frozen=True)
class Holder:
    """A student the file names, as the register holds them."""

    student_number: str
    exam_number: str | None
    name: str
    college_code: str
    class_code: str


@dataclass(frozen=True)
class Problem:
    excel_row: int
    key: str  # exam_number | new_number | name
    value: str
    message: str


def cell_problems(rows: Iterable[MappingRow]) -> list[Problem]:
    """Required cells, shapes, and numbers repeated inside the file (both rows of a repeat are marked)."""
    problems: list[Problem] = []
    first: dict[tuple[str, str], int] = {}
    for row in rows:
        for key, label in (("exam_number", "考生号"), ("new_number", "学号"), ("name", "姓名")):
            if not getattr(row, key):
                problems.append(Problem(row.excel_row, key, "", f"{label}不能为空"))
        if row.exam_number and not EXAM_NUMBER.match(row.exam_number):
            problems.append(Problem(row.excel_row, "exam_number", row.exam_number, "考生号应为8到20位数字"))
        for key, label in (("exam_number", "考生号"), ("new_number", "学号")):
            value = getattr(row, key)
            if not value:
                continue
            seen = first.setdefault((key, value), row.excel_row)
            if seen != row.excel_row:
                problems.append(Problem(row.excel_row, key, value, f"{label}在表中重复（第 {seen} 行）"))
                problems.append(Problem(seen, key, value, f"{label}在表中重复（第 {row.excel_row} 行）"))
    return _dedup(problems)


def register_problems(row: MappingRow, holder: Holder | None,
                      number_holder: Holder | None) -> tuple[str, list[Problem]]:
    """Check one row against the register.

    `holder`: the student whose 考生号 is `row.exam_number` (their current number is the provisional
    one, or the one an earlier mapping issued); `number_holder`: whoever already holds `row.new_number`.
    Returns the row's outcome (`CHANGE`, or `UNCHANGED` when an earlier run of the same file already
    issued this number) and its problems.
    """
    if not row.exam_number or not row.new_number:
        return CHANGE, []
    if holder is None:
        return CHANGE, [Problem(row.excel_row, "exam_number", row.exam_number,
                                f"考生号 {row.exam_number} 没有对应的学生")]
    problems: list[Problem] = []
    if row.name and row.name != holder.name:
        problems.append(Problem(row.excel_row, "name", row.name, f"姓名与学籍记录不一致（学籍中为“{holder.name}”）"))
    if holder.student_number == row.new_number:  # the same file applied again: nothing left to do
        return UNCHANGED, problems
    if not is_provisional(holder.student_number, holder.exam_number):
        problems.append(Problem(row.excel_row, "exam_number", row.exam_number,
                                f"该生已换发学号 {holder.student_number}，考生号不再是其临时学号"))
        return CHANGE, problems
    try:
        check_student_number(row.new_number, holder.college_code, holder.class_code)
    except RecordError as exc:
        problems.append(Problem(row.excel_row, "new_number", row.new_number, exc.message))
    if number_holder is not None:
        problems.append(Problem(row.excel_row, "new_number", row.new_number,
                                f"学号 {row.new_number} 已被{number_holder.name}（{number_holder.class_code}）使用"))
    return CHANGE, problems


def former_numbers(changes: Mapping[str, str], current: str) -> list[str]:
    """The numbers a student held before `current`, latest first, from `{new: old}` of every change."""
    result: list[str] = []
    number = current
    while number in changes and changes[number] not in result and changes[number] != current:
        number = changes[number]
        result.append(number)
    return result


def _dedup(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[int, str, str]] = set()
    unique = []
    for p in problems:
        if (p.excel_row, p.key, p.message) not in seen:
            seen.add((p.excel_row, p.key, p.message))
            unique.append(p)
    return unique
