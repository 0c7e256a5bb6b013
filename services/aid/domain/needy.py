"""家庭经济困难认定: levels, flags, academic years, year of study, masking (A1, A5)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from services.common.errors import Invalid

# Ordered from most to least in need; configurable per deployment (the last means "not needy").
DEFAULT_LEVELS: tuple[str, ...] = ("特别困难", "困难", "一般困难", "不困难")
NOT_NEEDY = "不困难"
# Special circumstances the national system records; each of them is identified as 特别困难 by default.
FLAGS: tuple[str, ...] = ("低保", "建档立卡", "孤残", "烈士子女")
ACADEMIC_YEAR = re.compile(r"^(\d{4})-(\d{4})$")


@dataclass(frozen=True)
class Levels:
    """The configured levels, most in need first; the last one is "not needy"."""

    names: tuple[str, ...] = DEFAULT_LEVELS

    def rank(self, level: str) -> int:
        """0 for the most in need; Invalid for an unknown level."""
        try:
            return self.names.index(level)
        except ValueError:
            raise Invalid(f"认定级别“{level}”无效，应为：{'、'.join(self.names)}") from None

    def is_needy(self, level: str | None) -> bool:
        return level is not None and level in self.names and level != self.names[-1]

    def at_least(self, level: str | None, minimum: str) -> bool:
        """Whether `level` is as much in need as `minimum` or more."""
        return self.is_needy(level) and self.rank(level or "") <= self.rank(minimum)


@dataclass(frozen=True)
class Assessment:
    """One student's identification for one academic year, as entered."""

    student_number: str
    academic_year: str
    level: str
    reasons: str
    evidence: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    id_number: str = ""
    income_per_capita: int | None = None  # 家庭人均年收入, 元
    extra: dict[str, str] = field(default_factory=dict)


def parse_academic_year(text: str) -> int:
    """'2026-2027' → 2026 (the year it starts); the two years must follow each other."""
    m = ACADEMIC_YEAR.match(text or "")
    if not m or int(m.group(2)) != int(m.group(1)) + 1:
        raise Invalid(f"学年“{text}”格式不正确，应为如 2026-2027")
    return int(m.group(1))


def academic_year_of(day: date) -> str:
    """The academic year a day falls in (it starts on 1 September)."""
    start = day.year if day.month >= 9 else day.year - 1
    return f"{start}-{start + 1}"


def entry_year(class_code: str, student_number: str = "") -> int | None:
    """Class codes (and student numbers) begin with the entry year (年级), e.g. 2023010101."""
    for code in (class_code, student_number):
        if len(code) >= 4 and code[:4].isdigit() and 1990 <= int(code[:4]) <= 2100:
            return int(code[:4])
    return None


def year_of_study(class_code: str, student_number: str, academic_year: str) -> int | None:
    """1 for the entry year's own academic year, 2 the next, …; None if the entry year is unknown."""
    start = entry_year(class_code, student_number)
    if start is None:
        return None
    return parse_academic_year(academic_year) - start + 1


def suggested_level(flags: Sequence[str], levels: Levels) -> str | None:
    """Students with a special circumstance are identified as the most-in-need level unless reviewed otherwise."""
    return levels.names[0] if any(f in FLAGS for f in flags) else None


def validate(assessment: Assessment, levels: Levels) -> list[str]:
    """Problems with an identification as entered (Chinese); empty when it may be recorded."""
    problems = []
    try:
        parse_academic_year(assessment.academic_year)
    except Invalid as exc:
        problems.append(str(exc.args[0]))
    try:
        levels.rank(assessment.level)
    except Invalid as exc:
        problems.append(str(exc.args[0]))
    if not assessment.reasons.strip():
        problems.append("请填写认定原因")
    unknown = [f for f in assessment.flags if f not in FLAGS]
    if unknown:
        problems.append(f"特殊困难类型“{'、'.join(unknown)}”无效，应为：{'、'.join(FLAGS)}")
    if levels.is_needy(assessment.level) and not assessment.evidence:
        problems.append("困难认定须附证明材料")
    if assessment.income_per_capita is not None and assessment.income_per_capita < 0:
        problems.append("家庭人均年收入不能为负数")
    if assessment.id_number and not valid_id_number(assessment.id_number):
        problems.append("身份证件号校验不通过")
    return problems


def valid_id_number(number: str) -> bool:
    """18-character resident ID with a correct check digit (GB 11643)."""
    if not re.fullmatch(r"\d{17}[\dX]", number or ""):
        return False
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(number[:17], weights, strict=True)) % 11]
    return number[17] == check


def mask_id(number: str | None) -> str:
    """Shown by default (A5): the first 4 and last 4 characters only."""
    if not number:
        return ""
    return number[:4] + "*" * max(len(number) - 8, 0) + number[-4:] if len(number) > 8 else "*" * len(number)


def mask_income(income: int | None) -> str:
    return "" if income is None else "****"


def clean_list(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in values if v and v.strip()))
