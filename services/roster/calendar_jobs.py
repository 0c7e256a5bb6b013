"""The academic calendar's jobs (R4, R16, R17, R18) and what feeds them: absences, reporting,
pending graduations.

Jobs: welcome (未报到 after the welcome period), dropout (疑似辍学/辍学 from absences), promotion
(1 August: one grade up), graduation_deadline (31 July: not graduated → pending graduation).
Each has a dry run (`preview`) and a run sharing the plan in domain/calendar.py. A run is kept
as a `CalendarRun` row (job, period) inserted before anything changes, so a second run of the
period, even a concurrent one on another instance, changes nothing (PostgreSQL: the second
insert waits for the first and fails on the primary key; SQLite: writers are serialised).
"""

from __future__ import annotations

import base64
import json
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.audit import audit
from services.common.caller import (
    ACADEMIC_AFFAIRS,
    COUNSELOR,
    DEPUTY_SECRETARY,
    STUDENT_AFFAIRS,
    SYSTEM,
    Caller,
)
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.sheets import CellError, Column, annotate, column_letter, read_rows, template
from services.roster import settings as cfg
from services.roster.adapters.orm import (
    Absence,
    CalendarRun,
    PendingGraduation,
    StatusChange,
    Student,
)
from services.roster.domain import calendar as cal
from services.roster.domain import status as st
from services.roster.domain import transitions as tr
from services.roster.handlers import _scope_filter, actor_of, publish_status_change
from services.roster.status_changes import parse_day, stage_kind

log = logging.getLogger(__name__)

JOBS: dict[str, str] = {
    "welcome": "迎新截止（未报到）",
    "dropout": "缺勤检查（疑似辍学、辍学）",
    "promotion": "升级",
    "graduation_deadline": "毕业截止（待毕业）",
}
# The timer's order: the deadline reads the grades before the same year's promotion changes them.
TIMER_ORDER = ("welcome", "dropout", "graduation_deadline", "promotion")
CALENDAR_ROLES = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS)
ABSENCE_WRITERS = (COUNSELOR, ACADEMIC_AFFAIRS, STUDENT_AFFAIRS)
SCOPED_READERS = (COUNSELOR, DEPUTY_SECRETARY, ACADEMIC_AFFAIRS, STUDENT_AFFAIRS)
PENDING_WRITERS = (COUNSELOR, DEPUTY_SECRETARY, ACADEMIC_AFFAIRS, STUDENT_AFFAIRS)
INSTITUTION_WIDE = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, SYSTEM)
CHUNK = 1000
MAX_LISTED = 2000
MAX_LISTED_ERRORS = 500
YES = {"是", "y", "yes", "true", "1", "√"}
NO = {"", "否", "n", "no", "false", "0"}


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _today() -> date:
    return date.today()


# ---- when a job may run, and for which period ----------------------------------------------


@dataclass(frozen=True)
class When:
    period: str
    refusal: str | None  # why the job cannot run on that day, or None


def when(job: str, day: date, values: dict[str, Any]) -> When:
    """The job's period for `day` and whether it may run then (each job refuses before its date)."""
    if job == "welcome":
        if not values.get("welcome_end"):
            raise Invalid("尚未设置迎新截止日期，请先在学籍日历设置中填写")
        end = date.fromisoformat(values["welcome_end"])
        late = None if day > end else f"迎新截止日 {end.isoformat()} 之后才能标记未报到"
        return When(str(end.year), late)
    if job == "dropout":
        return When(day.isoformat(), None)
    if job == "promotion":
        start = cal.month_day(day.year, values["promotion_day"])
        return When(str(day.year), None if day >= start else f"升级须在 {start.isoformat()} 或之后执行")
    if job == "graduation_deadline":
        deadline = cal.month_day(day.year, values["graduation_deadline"])
        return When(str(day.year), None if day > deadline else f"毕业截止日 {deadline.isoformat()} 之后才能执行")
    raise Invalid(f"未知的学籍日历任务“{job}”（可选：{'、'.join(JOBS)}）")


def _day(on: str) -> date:
    return parse_day(on, "日期") if str(on or "").strip() else _today()


def _ran(s: Session, job: str, period: str) -> CalendarRun | None:
    return s.get(CalendarRun, (job, period))


def _deadline_refusal(s: Session, job: str, period: str) -> None:
    """The deadline finds final-year students by grade; once the same year's promotion has moved
    grades on it would take this year's promoted students for last year's final year."""
    if job == "graduation_deadline" and _ran(s, "promotion", period) is not None:
        raise Invalid(f"{period} 年的升级已执行，毕业截止检查须在升级之前；请在待毕业名单中逐个登记")


# ---- plans ---------------------------------------------------------------------------------


def _learner(x: Any) -> cal.Learner:
    return cal.Learner(x.student_number, x.name, x.class_code, x.status, x.grade, x.entry_month,
                       x.program_years, x.reported_at is not None)


LEARNER_COLUMNS = (Student.student_number, Student.name, Student.class_code, Student.status, Student.grade,
                   Student.entry_month, Student.program_years, Student.reported_at)


@dataclass
class Plan:
    rows: list[cal.PlanRow]
    held: list[cal.PlanRow]
    students: dict[str, Student]  # ORM rows of the students whose status changes (status jobs)
    learners: dict[str, cal.Learner]


def _plan(s: Session, job: str, day: date, values: dict[str, Any], *, lock: bool = False) -> Plan:
    year_start = values["promotion_day"]
    if job in ("welcome", "dropout"):
        if job == "welcome":
            query = select(Student).where(Student.status == st.ENROLLED, Student.reported_at.is_(None))
            students = {x.student_number: x for x in s.scalars(query.with_for_update() if lock else query)}
            learners = {n: _learner(x) for n, x in students.items()}
            rows = cal.welcome_plan(learners.values(), date.fromisoformat(values["welcome_end"]), year_start)
        else:
            runs = absence_runs(s, (st.ENROLLED, st.SUSPECTED_DROPOUT), day)
            students = {}
            for chunk in _chunks(sorted(runs)):
                query = select(Student).where(Student.student_number.in_(chunk),
                                              Student.status.in_((st.ENROLLED, st.SUSPECTED_DROPOUT)))
                students.update((x.student_number, x) for x in s.scalars(query.with_for_update() if lock else query))
            learners = {n: _learner(x) for n, x in students.items()}
            rows = cal.dropout_plan(learners.values(), runs, int(values["suspect_days"]), int(values["dropout_days"]))
        return Plan(cal.sorted_rows(rows), [], students, learners)
    learners = {r.student_number: _learner(r) for r in s.execute(
        select(*LEARNER_COLUMNS).where(Student.status == st.ENROLLED))}
    if job == "promotion":
        promotion = cal.promotion_plan(learners.values(), day.year, year_start)
        return Plan(cal.sorted_rows(promotion.rows), cal.sorted_rows(promotion.held), {}, learners)
    deadline = cal.month_day(day.year, values["graduation_deadline"])
    pending = set(s.scalars(select(PendingGraduation.student_number).where(PendingGraduation.state == "open")))
    rows = cal.deadline_plan(learners.values(), deadline, cal.month_day(day.year + 1, values["graduation_deadline"]),
                             pending, year_start)
    return Plan(cal.sorted_rows(rows), [], {}, learners)


def absence_runs(s: Session, statuses: Sequence[str], until: date, scope: Any = None) -> dict[str, cal.AbsenceRun]:
    """Each student's current run of unexcused, unreachable absences (R16), counted from the
    student's last status change (domain/calendar.counting_from)."""
    query = (select(Absence.student_number, Absence.day).join(Student, Student.student_number == Absence.student_number)
             .where(Absence.excused.is_(False), Absence.reachable.is_(False), Absence.day <= until,
                    Student.status.in_(statuses)))
    if scope is not None:
        query = query.where(scope)
    days: dict[str, list[date]] = defaultdict(list)
    for number, day in s.execute(query):
        days[number].append(day)
    changes: dict[str, list[tuple[str, date]]] = defaultdict(list)
    for chunk in _chunks(sorted(days)):
        for number, new_status, effective_at in s.execute(
                select(StatusChange.student_number, StatusChange.new_status, StatusChange.effective_at)
                .where(StatusChange.student_number.in_(chunk)).order_by(StatusChange.id)):
            changes[number].append((new_status, effective_at.date()))
    runs = {}
    for number, absent in days.items():
        run = cal.absence_run(absent, after=cal.counting_from(changes.get(number, ())), until=until)
        if run.length:
            runs[number] = run
    return runs


def _row_view(row: cal.PlanRow) -> dict[str, Any]:
    return {"student_number": row.student_number, "name": row.name, "class_code": row.class_code,
            "from": row.before, "to": row.after, "reason": row.reason}


# ---- preview and run -----------------------------------------------------------------------


def preview(db: Database, caller: Caller, job: str, on: str = "") -> dict[str, Any]:
    """Dry run: who would change if the job ran for `on`'s period now. Changes nothing."""
    caller.require_role(*CALENDAR_ROLES)
    day = _day(on)
    with db.reading() as s:
        values = cfg.current(s)
        timing = when(job, day, values)
        _deadline_refusal(s, job, timing.period)
        already = _ran(s, job, timing.period) is not None
        plan = Plan([], [], {}, {}) if already else _plan(s, job, day, values)
    return {"job": job, "job_label": JOBS[job], "on": day.isoformat(), "period": timing.period,
            "already_ran": already, "refusal": timing.refusal, "count": len(plan.rows),
            "rows": [_row_view(r) for r in plan.rows], "held": [_row_view(r) for r in plan.held]}


def run(db: Database, caller: Caller, job: str, on: str = "") -> dict[str, Any]:
    """Apply the job for `on`'s period (default today), once per period."""
    caller.require_role(*CALENDAR_ROLES)
    day = _day(on)
    if day > _today():
        raise Invalid("执行日期不能晚于今天（可先预览）")
    period = ""
    try:
        with db.transaction() as s:
            values = cfg.current(s)
            timing = when(job, day, values)
            period = timing.period
            if _ran(s, job, period) is not None:
                return _ran_already(job, period)
            if timing.refusal:
                raise Invalid(timing.refusal)
            _deadline_refusal(s, job, period)
            record = CalendarRun(job=job, period=period, ran_at=datetime.now(UTC), actor=caller.username, affected=0)
            s.add(record)
            s.flush()  # a concurrent run of the same period waits here, then fails on the key
            affected, summary = _apply(s, caller, job, day, values)
            record.affected = affected
            record.details = json.dumps({"on": day.isoformat(), **summary}, ensure_ascii=False)
            audit(s, caller, f"calendar.{job}", period, None,
                  {"on": day.isoformat(), "affected": affected, **summary}, chain=True)
    except IntegrityError:
        with db.reading() as s:
            if period and _ran(s, job, period) is not None:
                return _ran_already(job, period)
        raise
    return {"job": job, "period": period, "affected": affected, "already_ran": False}


def _ran_already(job: str, period: str) -> dict[str, Any]:
    return {"job": job, "period": period, "affected": 0, "already_ran": True}


def _apply(s: Session, caller: Caller, job: str, day: date, values: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    plan = _plan(s, job, day, values, lock=True)
    if job in ("welcome", "dropout"):
        return _apply_status(s, caller, job, plan, day)
    if job == "promotion":
        return _apply_promotion(s, plan)
    now = datetime.now(UTC)
    s.add_all([PendingGraduation(student_number=r.student_number, reason=r.reason, expected_on=r.expected_on,
                                 state="open", created_by=caller.username, created_at=now) for r in plan.rows])
    return len(plan.rows), {}


def _apply_status(s: Session, caller: Caller, job: str, plan: Plan, day: date) -> tuple[int, dict[str, Any]]:
    """Stage every change, flush once, then publish each (outbox) and audit it."""
    staged: list[tuple[StatusChange, str]] = []
    counts: dict[str, int] = defaultdict(int)
    with s.no_autoflush:
        for row in plan.rows:
            student = plan.students[row.student_number]
            evidence = (f"缺勤记录：{'、'.join(d.isoformat() for d in row.run_days)}" if row.run_days
                        else f"学籍日历：{JOBS[job]}，{day.isoformat()}")
            for code in row.kinds:
                # The rule is the calendar's; the staff member (or the timer) only sets it off.
                change = stage_kind(s, student, tr.kind_of(code), role=SYSTEM, reason=row.reason, effective_on=day,
                                    actor_caller=caller, evidence=evidence)
                staged.append((change, code))
                counts[code] += 1
        s.flush()
    actor = actor_of(caller)
    for change, code in staged:
        publish_status_change(s, change, actor=actor, correlation_id=caller.correlation_id)
        audit(s, caller, f"status.{code}", change.student_number, {"status": change.old_status},
              {"status": change.new_status, "change_id": change.id, "reason": change.reason,
               "effective_on": day.isoformat(), "evidence": change.evidence, "calendar_job": job}, chain=True)
    return len(plan.rows), {"counts": dict(counts)}


def _apply_promotion(s: Session, plan: Plan) -> tuple[int, dict[str, Any]]:
    """Set-based: one UPDATE per (stored grade, new grade) and chunk of numbers, conditional on the
    row being unchanged since the plan read it; no ORM object per student."""
    groups: dict[tuple[int | None, int], list[str]] = defaultdict(list)
    for row in plan.rows:
        assert row.new_grade is not None
        groups[(plan.learners[row.student_number].grade, row.new_grade)].append(row.student_number)
    now = datetime.now(UTC)
    affected = 0
    for (stored, new), numbers in sorted(groups.items(), key=lambda g: (g[0][0] or 0, g[0][1])):
        same = Student.grade.is_(None) if stored is None else Student.grade == stored
        for chunk in _chunks(numbers):
            result = s.execute(update(Student)
                               .where(Student.student_number.in_(chunk), Student.status == st.ENROLLED, same)
                               .values(grade=new, updated_at=now).execution_options(synchronize_session=False))
            affected += result.rowcount
    by_grade: dict[str, int] = defaultdict(int)
    for row in plan.rows:
        by_grade[str(row.new_grade)] += 1
    return affected, {"to_grade": dict(sorted(by_grade.items())), "held": len(plan.held)}


def calendar_runs(db: Database, caller: Caller) -> list[dict[str, Any]]:
    caller.require_role(*CALENDAR_ROLES)
    with db.reading() as s:
        rows = s.scalars(select(CalendarRun).order_by(CalendarRun.ran_at.desc()).limit(MAX_LISTED)).all()
        return [{"job": r.job, "job_label": JOBS.get(r.job, r.job), "period": r.period,
                 "ran_at": r.ran_at.isoformat(), "actor": r.actor, "affected": r.affected,
                 "details": json.loads(r.details) if r.details else {}} for r in rows]


def run_due(db: Database, caller: Caller, today: date | None = None) -> list[dict[str, Any]]:
    """The timer: every job due today that has not run for its period. Dropout checks the day
    before, whose absences the counselors have entered by then. One job failing does not stop
    the others (the next tick tries it again)."""
    today = today or _today()
    results = []
    for job in TIMER_ORDER:
        day = today - timedelta(days=1) if job == "dropout" else today
        try:
            with db.reading() as s:
                values = cfg.current(s)
                if job == "welcome" and not values.get("welcome_end"):
                    continue
                timing = when(job, day, values)
                if timing.refusal or _ran(s, job, timing.period) is not None:
                    continue
            results.append(run(db, caller, job, day.isoformat()))
        except Exception:
            log.exception("calendar job %s for %s failed", job, day.isoformat())
    return results


# ---- absences (R16) --------------------------------------------------------------------------


@dataclass(frozen=True)
class AbsenceEntry:
    student_number: str
    day: date
    excused: bool
    reachable: bool
    note: str | None


def _flag(value: Any, label: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in YES:
        return True
    if text in NO:
        return False
    raise Invalid(f"{label}应为“是”或“否”")


def _scoped_student(caller: Caller, student: Student | None, number: str) -> Student:
    """The student if the caller's scope covers them; unknown numbers are NotFound only for
    institution-wide callers, so nobody probes numbers outside their scope."""
    if student is None:
        if caller.role in INSTITUTION_WIDE:
            raise NotFound(f"学号 {number} 不存在")
        raise Forbidden(f"学生 {number} 不在您的数据权限范围内")
    caller.require_student(student.student_number, student.college_code, student.class_code)
    return student


def _students(s: Session, numbers: Sequence[str], *, lock: bool = False) -> dict[str, Student]:
    found: dict[str, Student] = {}
    for chunk in _chunks(sorted(set(numbers))):
        query = select(Student).where(Student.student_number.in_(chunk))
        found.update((x.student_number, x) for x in s.scalars(query.with_for_update() if lock else query))
    return found


def _absence_entry(raw: dict[str, Any], today: date) -> AbsenceEntry:
    number = str(raw.get("student_number") or "").strip()
    if not number:
        raise Invalid("请填写学号")
    day = parse_day(raw.get("day"), "缺勤日期")
    if day > today:
        raise Invalid("缺勤日期不能晚于今天")
    note = str(raw.get("note") or "").strip()[:500] or None
    return AbsenceEntry(number, day, _flag(raw.get("excused"), "是否请假"), _flag(raw.get("reachable"), "是否联系上"),
                        note)


def _absence_state(row: Absence) -> dict[str, Any]:
    return {"day": row.day.isoformat(), "excused": row.excused, "reachable": row.reachable, "note": row.note}


def _save_absences(s: Session, caller: Caller, entries: Sequence[AbsenceEntry]) -> dict[str, int]:
    """Upsert per student and day; each entry audited (chained) on the student."""
    students = _students(s, [e.student_number for e in entries])
    for e in entries:
        student = _scoped_student(caller, students.get(e.student_number), e.student_number)
        if st.has_left(student.status):
            raise Invalid(f"学号 {e.student_number} 学籍状态为“{st.label(student.status)}”，不能登记缺勤")
    existing: dict[tuple[str, date], Absence] = {}
    days = {e.day for e in entries}
    for chunk in _chunks(sorted(students)):
        for row in s.scalars(select(Absence).where(Absence.student_number.in_(chunk), Absence.day.in_(days))):
            existing[(row.student_number, row.day)] = row
    now = datetime.now(UTC)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for e in entries:
        row = existing.get((e.student_number, e.day))
        before = None if row is None else _absence_state(row)
        if row is None:
            row = Absence(student_number=e.student_number, day=e.day)
            s.add(row)
            counts["created"] += 1
        elif (row.excused, row.reachable, row.note) == (e.excused, e.reachable, e.note):
            counts["unchanged"] += 1
            continue
        else:
            counts["updated"] += 1
        row.excused, row.reachable, row.note = e.excused, e.reachable, e.note
        row.entered_by, row.entered_at = caller.username, now
        audit(s, caller, "absence.record", e.student_number, before, _absence_state(row), chain=True)
    return {"saved": counts["created"] + counts["updated"], **counts}


def record_absences(db: Database, caller: Caller, entries: list[dict[str, Any]]) -> dict[str, int]:
    """Absences entered by hand (usually a counselor, one day of a class): all or nothing."""
    caller.require_role(*ABSENCE_WRITERS)
    if not entries:
        raise Invalid("没有要登记的缺勤记录")
    today = _today()
    parsed: list[AbsenceEntry] = []
    seen: set[tuple[str, date]] = set()
    for index, raw in enumerate(entries, start=1):
        try:
            entry = _absence_entry(raw if isinstance(raw, dict) else {}, today)
        except Invalid as exc:
            raise Invalid(f"第 {index} 条：{exc}") from None
        if (entry.student_number, entry.day) in seen:
            raise Invalid(f"第 {index} 条：学号 {entry.student_number} 在 {entry.day.isoformat()} 重复登记")
        seen.add((entry.student_number, entry.day))
        parsed.append(entry)
    with db.transaction() as s:
        return _save_absences(s, caller, parsed)


ABSENCE_COLUMNS = (
    Column("student_number", "学号", required=True, text=True, width=16),
    Column("name", "姓名", note="可选；填写时须与学号一致", width=10),
    Column("day", "缺勤日期", required=True, note="格式 YYYY-MM-DD；只计教学日", width=12),
    Column("excused", "是否请假", note="是/否，空白为否", choices=("是", "否"), width=10),
    Column("reachable", "是否联系上", note="是/否，空白为否（本人或家长）", choices=("是", "否"), width=12),
    Column("note", "备注", width=30),
)


def absence_template(db: Database, caller: Caller) -> dict[str, str]:
    caller.require_role(*ABSENCE_WRITERS)
    content = template(ABSENCE_COLUMNS, "缺勤登记", example=None)
    return {"filename": "缺勤登记模板.xlsx", "content": base64.b64encode(content).decode("ascii")}


def import_absences(db: Database, caller: Caller, content: str) -> dict[str, Any]:
    """An absence sheet (base64 xlsx), checked cell by cell; any error saves nothing and returns
    the workbook annotated."""
    caller.require_role(*ABSENCE_WRITERS)
    try:
        data = base64.b64decode(content, validate=True)
    except ValueError:
        raise Invalid("上传内容不是有效的文件") from None
    letters = {c.key: column_letter(ABSENCE_COLUMNS, c.key) for c in ABSENCE_COLUMNS}
    headers = {c.key: c.header for c in ABSENCE_COLUMNS}
    errors: list[CellError] = []

    def flag(row: int, key: str, value: Any, message: str) -> None:
        errors.append(CellError(row, letters[key], headers[key], value, message))

    today = _today()
    rows = list(read_rows(data, ABSENCE_COLUMNS))
    if not rows:
        raise Invalid("文件中没有数据行")
    with db.reading() as s:
        students = _students(s, [raw["student_number"] for _, raw in rows if raw["student_number"]])
    entries: list[AbsenceEntry] = []
    first_row: dict[tuple[str, date], int] = {}
    for excel_row, raw in rows:
        number = raw["student_number"]
        student = students.get(number)
        covered = student is not None and (caller.role in INSTITUTION_WIDE or caller.scope.covers_student(
            student.student_number, student.college_code, student.class_code))
        ok = True
        if not number:
            flag(excel_row, "student_number", "", "请填写学号")
            ok = False
        elif not covered:
            flag(excel_row, "student_number", number, "学号不存在或不在您的数据权限范围内")
            ok = False
        elif st.has_left(student.status):
            flag(excel_row, "student_number", number, f"学籍状态为“{st.label(student.status)}”，不能登记缺勤")
            ok = False
        elif raw["name"] and raw["name"] != student.name:
            flag(excel_row, "name", raw["name"], f"姓名与学号不符（学籍中为“{student.name}”）")
            ok = False
        values: dict[str, Any] = {}
        for key in ("day", "excused", "reachable"):
            try:
                values[key] = (parse_day(raw[key], "缺勤日期") if key == "day" else _flag(raw[key], headers[key]))
            except Invalid as exc:
                flag(excel_row, key, raw[key], str(exc))
                ok = False
        if "day" in values and values["day"] > today:
            flag(excel_row, "day", raw["day"], "缺勤日期不能晚于今天")
            ok = False
        if not ok:
            continue
        key = (number, values["day"])
        if key in first_row:
            flag(excel_row, "day", raw["day"], f"与第 {first_row[key]} 行重复（同一学生同一天）")
            continue
        first_row[key] = excel_row
        entries.append(AbsenceEntry(number, values["day"], values["excused"], values["reachable"],
                                    raw["note"][:500] or None))
    if errors:
        return {"ok": False, "saved": 0, "created": 0, "updated": 0, "unchanged": 0, "error_count": len(errors),
                "errors": [{"row": e.row, "column": e.column, "header": e.header, "value": str(e.value or ""),
                            "message": e.message} for e in errors[:MAX_LISTED_ERRORS]],
                "annotated": base64.b64encode(annotate(data, ABSENCE_COLUMNS, errors)).decode("ascii")}
    with db.transaction() as s:
        counts = _save_absences(s, caller, entries)
    return {"ok": True, **counts, "error_count": 0, "errors": [], "annotated": None}


def absences(db: Database, caller: Caller, student_number: str = "", class_code: str = "") -> list[dict[str, Any]]:
    """Absences in the caller's scope, latest first (at most MAX_LISTED)."""
    caller.require_role(*SCOPED_READERS)
    query = select(Absence, Student.name, Student.class_code).join(Student,
                                                                   Student.student_number == Absence.student_number)
    scope = _scope_filter(caller)
    if scope is not None:
        query = query.where(scope)
    if student_number:
        query = query.where(Absence.student_number == student_number.strip())
    if class_code:
        query = query.where(Student.class_code == class_code.strip())
    with db.reading() as s:
        rows = s.execute(query.order_by(Absence.day.desc(), Absence.student_number).limit(MAX_LISTED)).all()
        return [{"id": a.id, "student_number": a.student_number, "name": name, "class_code": klass,
                 "day": a.day.isoformat(), "school_day": cal.is_school_day(a.day), "excused": a.excused,
                 "reachable": a.reachable, "note": a.note, "entered_by": a.entered_by,
                 "entered_at": a.entered_at.isoformat()} for a, name, klass in rows]


def suspected_dropouts(db: Database, caller: Caller) -> list[dict[str, Any]]:
    """疑似辍学名单: students in scope marked 疑似辍学 or 辍学, with their current absence run."""
    caller.require_role(*SCOPED_READERS)
    statuses = (st.SUSPECTED_DROPOUT, st.DROPOUT)
    query = select(Student).where(Student.status.in_(statuses))
    scope = _scope_filter(caller)
    if scope is not None:
        query = query.where(scope)
    with db.reading() as s:
        students = s.scalars(query.order_by(Student.class_code, Student.student_number)).all()
        runs = absence_runs(s, statuses, _today(), scope)
        return [{"student_number": x.student_number, "name": x.name, "college_code": x.college_code,
                 "class_code": x.class_code, "status": x.status, "status_label": st.label(x.status),
                 "run_days": runs[x.student_number].length if x.student_number in runs else 0,
                 "last_absence": runs[x.student_number].last.isoformat()  # type: ignore[union-attr]
                 if x.student_number in runs else None} for x in students]


# ---- reporting (R4) ----------------------------------------------------------------------------


def mark_reported(db: Database, caller: Caller, numbers: list[str]) -> dict[str, int]:
    """报到: the students reported at the start of study, so the welcome job leaves them alone."""
    caller.require_role(*ABSENCE_WRITERS)
    wanted = sorted({str(n).strip() for n in numbers or [] if str(n).strip()})
    if not wanted:
        raise Invalid("请选择已报到的学生")
    now = datetime.now(UTC)
    marked = already = 0
    with db.transaction() as s:
        students = _students(s, wanted, lock=True)
        for number in wanted:
            student = _scoped_student(caller, students.get(number), number)
            if student.status == st.NOT_REPORTED:
                raise Invalid(f"学号 {number} 已标记为未报到，请办理“补报到”异动")
            if st.has_left(student.status):
                raise Invalid(f"学号 {number} 学籍状态为“{st.label(student.status)}”，不能登记报到")
            if student.reported_at is not None:
                already += 1
                continue
            student.reported_at = now
            audit(s, caller, "student.reported", number, {"reported_at": None},
                  {"reported_at": now.isoformat()}, chain=True)
            marked += 1
    return {"marked": marked, "already": already}


# ---- pending graduations (R18) ---------------------------------------------------------------


def _pending_view(entry: PendingGraduation, student: Student) -> dict[str, Any]:
    return {"id": entry.id, "student_number": entry.student_number, "name": student.name,
            "college_code": student.college_code, "class_code": student.class_code, "reason": entry.reason,
            "expected_on": entry.expected_on.isoformat() if entry.expected_on else None,
            "created_by": entry.created_by, "created_at": entry.created_at.isoformat(), "state": entry.state,
            "closed_at": entry.closed_at.isoformat() if entry.closed_at else None,
            "closed_reason": entry.closed_reason}


def pending_graduations(db: Database, caller: Caller, state: str = "open") -> list[dict[str, Any]]:
    caller.require_role(*PENDING_WRITERS)
    if state not in ("open", "closed", ""):
        raise Invalid("状态应为 open、closed 或空（全部）")
    query = select(PendingGraduation, Student).join(Student, Student.student_number == PendingGraduation.student_number)
    scope = _scope_filter(caller)
    if scope is not None:
        query = query.where(scope)
    if state:
        query = query.where(PendingGraduation.state == state)
    with db.reading() as s:
        rows = s.execute(query.order_by(Student.class_code, PendingGraduation.student_number,
                                        PendingGraduation.id)).all()
        return [_pending_view(entry, student) for entry, student in rows]


def add_pending_graduation(db: Database, caller: Caller, student_number: str, reason: str,
                           expected_on: str = "") -> dict[str, Any]:
    """An irregular case put on the list by hand (R18): reason and, if known, the expected date."""
    caller.require_role(*PENDING_WRITERS)
    if not reason.strip():
        raise Invalid("请填写待毕业原因")
    expected = parse_day(expected_on, "预计毕业日期") if str(expected_on or "").strip() else None
    number = student_number.strip()
    with db.transaction() as s:
        student = _scoped_student(caller, _students(s, [number], lock=True).get(number), number)
        if student.status != st.ENROLLED:
            raise Invalid(f"学号 {number} 学籍状态为“{st.label(student.status)}”，只有在读学生可列入待毕业名单")
        open_id = s.scalar(select(PendingGraduation.id).where(PendingGraduation.student_number == number,
                                                               PendingGraduation.state == "open"))
        if open_id is not None:
            raise Conflict(f"学号 {number} 已在待毕业名单中（{open_id}）")
        entry = PendingGraduation(student_number=number, reason=reason.strip()[:1000], expected_on=expected,
                                  state="open", created_by=caller.username, created_at=datetime.now(UTC))
        s.add(entry)
        s.flush()
        audit(s, caller, "pending_graduation.add", number, None,
              {"id": entry.id, "reason": entry.reason, "expected_on": expected_on or None}, chain=True)
        return _pending_view(entry, student)


def close_pending_graduation(db: Database, caller: Caller, entry_id: int, note: str = "") -> dict[str, Any]:
    caller.require_role(*PENDING_WRITERS)
    with db.transaction() as s:
        entry = s.get(PendingGraduation, entry_id)
        if entry is None:
            raise NotFound(f"待毕业记录 {entry_id} 不存在")
        student = _scoped_student(caller, s.get(Student, entry.student_number), entry.student_number)
        if entry.state != "open":
            raise Conflict(f"待毕业记录 {entry_id} 已关闭")
        entry.state, entry.closed_at = "closed", datetime.now(UTC)
        entry.closed_reason = f"人工关闭：{note.strip()}" if note.strip() else "人工关闭"
        audit(s, caller, "pending_graduation.close", entry.student_number, {"id": entry.id, "state": "open"},
              {"id": entry.id, "state": "closed", "note": note.strip() or None}, chain=True)
        return _pending_view(entry, student)
