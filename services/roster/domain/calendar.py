"""The academic calendar's rules (R4, R16, R17, R18): school days, the absence rule, grades and
the plans of the calendar jobs. Each plan is a pure function returning the rows that change and
why, so the dry-run preview and the run share it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from services.common.workdays import WorkdayCalendar
from services.roster.domain import status as st

DEFAULT_PROGRAM_YEARS = 4
# The longest stretch without a school day (Spring Festival + weekends) is far below this.
MAX_GAP_DAYS = 60
# Statuses the absence rule itself sets: a change into them does not restart the count.
ABSENCE_TRACK = frozenset({st.SUSPECTED_DROPOUT, st.DROPOUT})


SCHOOL_DAYS = WorkdayCalendar()


def is_school_day(day: date) -> bool:
    """教学日: Monday to Friday minus public holidays, plus swapped workdays (调休上班)."""
    return SCHOOL_DAYS.is_workday(day)


def previous_school_day(day: date) -> date | None:
    for back in range(1, MAX_GAP_DAYS + 1):
        candidate = day - timedelta(days=back)
        if is_school_day(candidate):
            return candidate
    return None


@dataclass(frozen=True)
class AbsenceRun:
    length: int  # consecutive school days absent, ending at `last`
    last: date | None
    days: tuple[date, ...] = ()


def counting_from(changes: Iterable[tuple[str, date]]) -> date | None:
    """The day after which absences count: the effective day of the student's latest status
    change, not counting the marks the absence rule made itself (so a 疑似辍学 student's earlier
    absences still lead on to 辍学). `changes` are (new_status, effective day), oldest first."""
    start = None
    for new_status, effective in changes:
        if new_status not in ABSENCE_TRACK:
            start = effective
    return start


def absence_run(days: Iterable[date], *, after: date | None = None, until: date | None = None) -> AbsenceRun:
    """R16: the run of consecutive school days absent (unexcused and unreachable) ending at the
    latest such day. Days on or before `after` (the last status change) or after `until`, and
    days that are not school days, do not count."""
    counted = sorted({d for d in days if (after is None or d > after) and (until is None or d <= until)
                      and is_school_day(d)})
    if not counted:
        return AbsenceRun(0, None)
    present = set(counted)
    run = [counted[-1]]
    while True:
        before = previous_school_day(run[-1])
        if before is None or before not in present:
            break
        run.append(before)
    return AbsenceRun(len(run), counted[-1], tuple(reversed(run)))


def dropout_kinds(status: str, run: int, suspect_days: int, dropout_days: int) -> list[str]:
    """The status changes (kinds) the absence rule makes: 疑似辍学 at ≥ suspect_days, 辍学 at ≥
    dropout_days. 辍学 only follows 疑似辍学 (the transition table), so a student absent long
    enough goes through both in the same run."""
    kinds: list[str] = []
    if status == st.ENROLLED and run >= suspect_days:
        kinds.append("suspected_dropout")
        status = st.SUSPECTED_DROPOUT
    if status == st.SUSPECTED_DROPOUT and run >= dropout_days:
        kinds.append("dropout")
    return kinds


# ---- years and grades ------------------------------------------------------------------------


def month_day(year: int, text: str) -> date:
    """The configured "MM-DD" in `year` (29 February in a common year → 28 February)."""
    month, day = (int(part) for part in text.split("-"))
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, month, 28)


def academic_year(day: date, year_start: str = "08-01") -> int:
    """学年: the calendar year it starts in (from the promotion day, 1 August by default)."""
    return day.year if day >= month_day(day.year, year_start) else day.year - 1


def entry_year(student_number: str, entry_month: str | None, year_start: str = "08-01") -> int | None:
    """The academic year of entry: from 入学年月 (a spring entry belongs to the year begun the
    August before), else the first four digits of the student number; None if neither tells."""
    if entry_month:
        try:
            year, month = (int(part) for part in entry_month.split("-")[:2])
            return academic_year(date(year, month, 28), year_start)
        except ValueError:
            pass
    head = student_number[:4]
    if head.isdigit() and 1950 <= int(head) <= 2100:
        return int(head)
    return None


def program_years(text: str | None) -> int:
    """学制 as stored ("4", "3", "2.5"); a part year counts as a year; default 4."""
    try:
        years = math.ceil(float(text or ""))
    except ValueError:
        return DEFAULT_PROGRAM_YEARS
    return years if years > 0 else DEFAULT_PROGRAM_YEARS


@dataclass(frozen=True)
class Learner:
    """What the calendar rules need of a student (the use cases copy it from the record)."""

    student_number: str
    name: str
    class_code: str
    status: str
    grade: int | None = None  # stored 年级; None: derived from the entry year
    entry_month: str | None = None
    program_years: str | None = None
    reported: bool = False


def grade_of(learner: Learner, year: int, year_start: str = "08-01") -> int | None:
    """The grade in academic year `year`: the stored grade (kept by the promotions), else
    derived from the entry year; None when the entry year is unknown."""
    if learner.grade is not None:
        return learner.grade
    entered = entry_year(learner.student_number, learner.entry_month, year_start)
    return None if entered is None else year - entered + 1


@dataclass(frozen=True)
class PlanRow:
    student_number: str
    name: str
    class_code: str
    before: str  # shown as "from"
    after: str  # shown as "to"
    reason: str
    kinds: tuple[str, ...] = ()  # status changes to stage, in order
    old_grade: int | None = None
    new_grade: int | None = None
    run_days: tuple[date, ...] = ()
    expected_on: date | None = None


def _row(learner: Learner, before: str, after: str, reason: str, **extra: object) -> PlanRow:
    return PlanRow(learner.student_number, learner.name, learner.class_code, before, after, reason,
                   **extra)  # type: ignore[arg-type]


def welcome_plan(learners: Iterable[Learner], welcome_end: date, year_start: str = "08-01") -> list[PlanRow]:
    """R4: enrolled students of this year's intake who had not reported by the end of the
    welcome period become 未报到."""
    intake = academic_year(welcome_end, year_start)
    return [
        _row(x, st.label(x.status), st.label(st.NOT_REPORTED),
             f"迎新截止日 {welcome_end.isoformat()} 仍未报到", kinds=("not_reported",))
        for x in learners
        if x.status == st.ENROLLED and not x.reported
        and entry_year(x.student_number, x.entry_month, year_start) == intake
    ]


def dropout_plan(learners: Iterable[Learner], runs: Mapping[str, AbsenceRun], suspect_days: int,
                 dropout_days: int) -> list[PlanRow]:
    """R16 over the absence runs of each student (see absence_run)."""
    rows = []
    for x in learners:
        run = runs.get(x.student_number)
        if run is None:
            continue
        kinds = dropout_kinds(x.status, run.length, suspect_days, dropout_days)
        if not kinds:
            continue
        target = st.DROPOUT if kinds[-1] == "dropout" else st.SUSPECTED_DROPOUT
        assert run.last is not None
        first = run.days[0].isoformat()
        reason = (f"连续 {run.length} 个教学日缺勤且无法联系（{first} 至 {run.last.isoformat()}），"
                  f"达到{st.label(target)}标准（{dropout_days if target == st.DROPOUT else suspect_days} 天）")
        rows.append(_row(x, st.label(x.status), st.label(target), reason, kinds=tuple(kinds), run_days=run.days))
    return rows


@dataclass
class PromotionPlan:
    rows: list[PlanRow] = field(default_factory=list)  # promoted
    held: list[PlanRow] = field(default_factory=list)  # enrolled but not promoted, with the reason


def promotion_plan(learners: Iterable[Learner], year: int, year_start: str = "08-01") -> PromotionPlan:
    """R17: on the promotion day of `year` every enrolled student moves up one grade; students
    already in their final year stay (listed: they are due to graduate), as do students whose
    entry year is unknown. A student who enters this year has no grade to leave yet."""
    plan = PromotionPlan()
    for x in learners:
        if x.status != st.ENROLLED:
            continue
        old = grade_of(x, year - 1, year_start)
        if old is None:
            plan.held.append(_row(x, "未知", "未知", "无法确定入学年份（学号前四位或入学年月），未升级"))
            continue
        if old < 1:
            continue
        years = program_years(x.program_years)
        if old >= years:
            plan.held.append(_row(x, f"{old}年级", f"{old}年级", f"已在最后一年（学制 {years} 年），不升级",
                                  old_grade=old, new_grade=old))
            continue
        plan.rows.append(_row(x, f"{old}年级", f"{old + 1}年级", f"{year} 年升级", old_grade=old,
                              new_grade=old + 1))
    return plan


def deadline_plan(learners: Iterable[Learner], deadline: date, next_deadline: date, pending: set[str],
                  year_start: str = "08-01") -> list[PlanRow]:
    """R17/R18: enrolled final-year students not graduated by the deadline are listed as pending
    graduation, expected by the next deadline; a student already listed (open) is left alone."""
    year = academic_year(deadline, year_start)
    rows = []
    for x in learners:
        if x.status != st.ENROLLED or x.student_number in pending:
            continue
        grade = grade_of(x, year, year_start)
        years = program_years(x.program_years)
        if grade is None or grade < years:
            continue
        reason = f"毕业截止日 {deadline.isoformat()} 仍未毕业（{grade}年级，学制 {years} 年）"
        rows.append(_row(x, st.label(x.status), "待毕业", reason, expected_on=next_deadline))
    return rows


def sorted_rows(rows: Sequence[PlanRow]) -> list[PlanRow]:
    return sorted(rows, key=lambda r: (r.class_code, r.student_number))
