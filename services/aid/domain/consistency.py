"""The registers' consistency check (A1): needy ⊆ enrolled; aided ⊆ needy where a programme needs it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.aid.domain.needy import Levels


@dataclass(frozen=True)
class Violation:
    rule: str  # short code
    student_number: str
    message: str  # Chinese


@dataclass(frozen=True)
class EnrolledFact:
    enrolled: bool
    stop_instalments: bool


@dataclass(frozen=True)
class AwardFact:
    student_number: str
    programme_code: str
    programme_name: str
    requires_need: bool
    paid_after_stop: int = 0  # instalments paid though the student had left


def check(needy: Mapping[str, str], enrolled: Mapping[str, EnrolledFact], awards: Iterable[AwardFact],
          levels: Levels) -> list[Violation]:
    """`needy`: student → level identified this year; `enrolled`: the enrolled register."""
    found = []
    for number, level in sorted(needy.items()):
        fact = enrolled.get(number)
        if fact is None:
            found.append(Violation("needy_not_enrolled", number, "困难认定学生不在在校生库中"))
        elif not fact.enrolled and levels.is_needy(level):
            found.append(Violation("needy_left", number, "困难认定学生已离校或未报到"))
    for award in awards:
        if award.student_number not in enrolled:
            found.append(Violation("aided_not_enrolled", award.student_number,
                                   f"受助学生（{award.programme_name}）不在在校生库中"))
        if award.requires_need and not levels.is_needy(needy.get(award.student_number)):
            found.append(Violation("aided_not_needy", award.student_number,
                                   f"{award.programme_name}受助学生未被认定为家庭经济困难"))
        if award.paid_after_stop:
            found.append(Violation("paid_after_leaving", award.student_number,
                                   f"{award.programme_name}在学生离校后仍发放了 {award.paid_after_stop} 期"))
    return found
