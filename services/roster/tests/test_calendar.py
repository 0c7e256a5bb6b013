"""The academic calendar (R4, R16–R18): school days, the absence rule, grades and the job plans as
plain rules; then each job's dry run, run, second run and refusal before its date, absences,
reporting and pending graduations against real SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import eventlet
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from services.common.audit import verify_chain
from services.common.caller import Caller, Scope, system_caller
from services.common.db import Database
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.models import AuditEntry, OutboxMessage
from services.common.sheets import ERROR_SHEET, export
from services.roster import calendar_jobs as jobs
from services.roster import handlers, importing, settings
from services.roster.adapters.orm import Absence, CalendarRun, PendingGraduation, StatusChange, Student
from services.roster.domain import calendar as cal
from services.roster.tests.factories import student
from services.roster.tests.test_import import COUNSELOR, REGISTRAR, db  # noqa: F401 - fixture

D = date.fromisoformat
ACADEMIC = Caller("1000003", "1000003", "academic_affairs", Scope("institution"))
OTHER_COUNSELOR = Caller("1000005", "1000005", "counselor", Scope("classes", ("2023010102",)))
DEPUTY = Caller("1000007", "1000007", "deputy_secretary", Scope("college", ("01",)))
HOUSING = Caller("1000008", "1000008", "housing_centre", Scope("institution"))
TIMER = system_caller("roster")


# ---- domain ------------------------------------------------------------------------------------


def test_school_days_follow_the_state_council_calendar_and_fall_back_to_weekdays() -> None:
    assert cal.is_school_day(D("2026-09-30"))  # Wednesday
    assert not cal.is_school_day(D("2026-10-01"))  # National Day, a Thursday
    assert not cal.is_school_day(D("2026-09-25"))  # Mid-autumn, a Friday
    assert cal.is_school_day(D("2026-09-20"))  # Sunday worked in exchange (调休)
    assert not cal.is_school_day(D("2026-09-19"))  # an ordinary Saturday
    # 2027 is not published in chinese_calendar 1.11: plain Monday to Friday.
    assert cal.is_school_day(D("2027-01-04")) and not cal.is_school_day(D("2027-01-02"))
    assert cal.previous_school_day(D("2026-09-28")) == D("2026-09-24")  # over the holiday and weekend
    assert cal.previous_school_day(D("2026-09-21")) == D("2026-09-20")


def test_absence_run_counts_consecutive_school_days_ending_at_the_latest() -> None:
    run = cal.absence_run([D("2026-09-11"), D("2026-09-14"), D("2026-09-15")])  # Fri, Mon, Tue
    assert (run.length, run.last) == (3, D("2026-09-15"))
    assert cal.absence_run([D("2026-09-14"), D("2026-09-16")]).length == 1  # present on the 15th
    # The swapped Sunday 20 September is a school day: missing it breaks the run, absent on it extends it.
    assert cal.absence_run([D("2026-09-18"), D("2026-09-21")]).length == 1
    assert cal.absence_run([D("2026-09-18"), D("2026-09-20"), D("2026-09-21")]).length == 3
    # Over Mid-autumn (25th) and the weekend: 24th and 28th are consecutive school days.
    assert cal.absence_run([D("2026-09-23"), D("2026-09-24"), D("2026-09-28")]).days == (
        D("2026-09-23"), D("2026-09-24"), D("2026-09-28"))
    # A day that is not a school day does not count; neither do days up to `after` or beyond `until`.
    assert cal.absence_run([D("2026-10-01")]) == cal.AbsenceRun(0, None)
    days = [D("2026-09-14"), D("2026-09-15"), D("2026-09-16"), D("2026-09-17")]
    assert cal.absence_run(days, after=D("2026-09-15")).length == 2
    assert cal.absence_run(days, until=D("2026-09-15")).last == D("2026-09-15")


def test_counting_starts_after_the_last_change_not_made_by_the_absence_rule() -> None:
    assert cal.counting_from([]) is None
    changes = [("not_reported", D("2026-09-16")), ("enrolled", D("2026-09-20")),
               ("suspected_dropout", D("2026-09-25")), ("dropout", D("2026-09-30"))]
    assert cal.counting_from(changes) == D("2026-09-20")


@pytest.mark.parametrize(("status", "run", "kinds"), [
    ("enrolled", 2, []), ("enrolled", 3, ["suspected_dropout"]), ("enrolled", 6, ["suspected_dropout"]),
    ("enrolled", 7, ["suspected_dropout", "dropout"]), ("suspected_dropout", 6, []),
    ("suspected_dropout", 7, ["dropout"]), ("dropout", 20, []), ("suspended", 20, []),
])
def test_dropout_thresholds(status: str, run: int, kinds: list[str]) -> None:
    assert cal.dropout_kinds(status, run, 3, 7) == kinds


def test_grades_from_the_stored_grade_or_the_entry_year() -> None:
    assert cal.academic_year(D("2026-07-31")) == 2025 and cal.academic_year(D("2026-08-01")) == 2026
    assert cal.academic_year(D("2026-08-31"), "09-01") == 2025
    assert cal.entry_year("202301010101", None) == 2023
    assert cal.entry_year("202301010101", "2022-09") == 2022  # the record's 入学年月 wins
    assert cal.entry_year("X1", "2024-03") == 2023  # spring entry: the academic year begun before
    assert cal.entry_year("X1", None) is None
    learner = cal.Learner("202301010101", "甲", "2023010101", "enrolled")
    assert cal.grade_of(learner, 2025) == 3 and cal.grade_of(learner, 2026) == 4
    assert cal.grade_of(cal.Learner("202301010101", "甲", "c", "enrolled", grade=2), 2026) == 2
    assert (cal.program_years("5"), cal.program_years("2.5"), cal.program_years(None),
            cal.program_years("四")) == (5, 3, 4, 4)


def learner(number: str, status: str = "enrolled", **extra: Any) -> cal.Learner:
    return cal.Learner(number, "学生" + number[-2:], number[:10], status, **extra)


def test_plans_list_who_changes_and_why() -> None:
    people = [
        learner("202301010101"),  # grade 3 in 2025-26 → 4
        learner("202201010101"),  # final year (4 of 4): not promoted, due to graduate
        learner("202301010102", grade=1),  # stored grade (repeated a year) → 2
        learner("202301010103", "suspended"),
        learner("202601010101"),  # enters in 2026: no grade to leave
        learner("X0001"),  # entry year unknown
        learner("202201010102", program_years="5"),  # 4 of 5 → 5
    ]
    plan = cal.promotion_plan(people, 2026)
    assert [(r.student_number, r.before, r.after) for r in plan.rows] == [
        ("202301010101", "3年级", "4年级"), ("202301010102", "1年级", "2年级"), ("202201010102", "4年级", "5年级")]
    assert [r.student_number for r in plan.held] == ["202201010101", "X0001"]
    assert "最后一年" in plan.held[0].reason and "入学年份" in plan.held[1].reason

    rows = cal.deadline_plan(people, D("2026-07-31"), D("2027-07-31"), pending=set())
    assert [(r.student_number, r.expected_on) for r in rows] == [("202201010101", D("2027-07-31"))]
    assert "2026-07-31" in rows[0].reason
    assert cal.deadline_plan(people, D("2026-07-31"), D("2027-07-31"), pending={"202201010101"}) == []

    intake = [learner("202601010101"), learner("202601010102", reported=True), learner("202501010101"),
              learner("202601010103", "suspended")]
    assert [r.student_number for r in cal.welcome_plan(intake, D("2026-09-15"))] == ["202601010101"]

    runs = {"202301010101": cal.absence_run([D("2026-09-21"), D("2026-09-22"), D("2026-09-23")])}
    [row] = cal.dropout_plan(people, runs, 3, 7)
    assert (row.kinds, row.after) == (("suspected_dropout",), "疑似辍学") and "连续 3 个教学日" in row.reason


# ---- handlers on both back ends ----------------------------------------------------------------


CLASSES = ("2022010101", "2023010101", "2023010102", "2026010101")


@pytest.fixture
def school(db: Database) -> Database:  # noqa: F811
    handlers.upsert_org_units(db, TIMER, [
        {"code": "2022010101", "name": "计科2201", "kind": "class", "parent_code": "0101"},
        {"code": "2026010101", "name": "计科2601", "kind": "class", "parent_code": "0101"},
    ])
    return db


def enrol(database: Database, klass: str, *seats: int) -> list[str]:
    born = date(int(klass[:4]) - 18, 3, 14)  # distinct ID numbers per intake
    importing.register_students(database, TIMER, [student(seat, klass=klass, born=born) for seat in seats])
    return [f"{klass}{seat:02d}" for seat in seats]


def status_of(database: Database, number: str) -> str:
    with database.reading() as s:
        return s.get(Student, number).status  # type: ignore[union-attr]


def grade_of(database: Database, number: str) -> int | None:
    with database.reading() as s:
        return s.get(Student, number).grade  # type: ignore[union-attr]


def set_status(database: Database, number: str, status: str) -> None:
    with database.transaction() as s:
        s.get(Student, number).status = status  # type: ignore[union-attr]


def status_events(database: Database) -> list[tuple[str, str, str]]:
    with database.reading() as s:
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "student.status_changed")
                         .order_by(OutboxMessage.id))
        return [(p["student_number"], p["old_status"], p["new_status"])
                for p in (json.loads(r.body)["payload"] for r in rows)]


def count(database: Database, model: Any, *where: Any) -> int:
    with database.reading() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def absent(database: Database, caller: Caller, number: str, *days: str, **flags: Any) -> dict[str, int]:
    return jobs.record_absences(database, caller, [{"student_number": number, "day": d, **flags} for d in days])


def test_welcome_marks_this_years_unreported_intake(school: Database) -> None:
    fresh = enrol(school, "2026010101", 1, 2, 3)
    older = enrol(school, "2023010101", 1)
    with pytest.raises(Invalid, match="迎新截止日期"):
        jobs.preview(school, REGISTRAR, "welcome", "2026-09-16")
    settings.save_setting(school, REGISTRAR, "welcome_end", "2026-09-15")
    assert jobs.mark_reported(school, REGISTRAR, [fresh[1]]) == {"marked": 1, "already": 0}
    assert jobs.mark_reported(school, REGISTRAR, [fresh[1]]) == {"marked": 0, "already": 1}

    dry = jobs.preview(school, ACADEMIC, "welcome", "2026-09-16")
    assert (dry["period"], dry["already_ran"], dry["count"], dry["refusal"]) == ("2026", False, 2, None)
    assert [(r["student_number"], r["from"], r["to"]) for r in dry["rows"]] == [
        (fresh[0], "在读", "未报到"), (fresh[2], "在读", "未报到")]
    assert status_of(school, fresh[0]) == "enrolled" and status_events(school) == []
    assert jobs.preview(school, ACADEMIC, "welcome", "2026-09-01")["refusal"]  # a preview before the date

    with pytest.raises(Invalid, match="之后"):
        jobs.run(school, ACADEMIC, "welcome", "2026-09-15")
    assert jobs.run(school, ACADEMIC, "welcome", "2026-09-16") == {
        "job": "welcome", "period": "2026", "affected": 2, "already_ran": False}
    assert [status_of(school, n) for n in (*fresh, *older)] == ["not_reported", "enrolled", "not_reported", "enrolled"]
    assert status_events(school) == [(fresh[0], "enrolled", "not_reported"), (fresh[2], "enrolled", "not_reported")]
    with school.reading() as s:
        change = s.scalars(select(StatusChange).where(StatusChange.student_number == fresh[0])).one()
        assert change.kind == "not_reported" and change.actor_id == ACADEMIC.username and "2026-09-15" in change.reason

    assert jobs.run(school, REGISTRAR, "welcome", "2026-09-20")["already_ran"]
    again = jobs.preview(school, REGISTRAR, "welcome", "2026-09-20")
    assert again["already_ran"] and again["count"] == 0
    assert len(status_events(school)) == 2
    with pytest.raises(Invalid, match="补报到"):
        jobs.mark_reported(school, REGISTRAR, [fresh[0]])
    with pytest.raises(Forbidden):
        jobs.run(school, COUNSELOR, "welcome", "2026-09-16")


def test_dropout_from_absences_dry_run_run_and_second_run(school: Database) -> None:
    a, b, c, d = enrol(school, "2023010101", 1, 2, 3, 4)
    absent(school, COUNSELOR, a, "2026-09-21", "2026-09-22", "2026-09-23")
    absent(school, COUNSELOR, b, "2026-09-21", "2026-09-23")
    absent(school, COUNSELOR, b, "2026-09-22", reachable=True)  # the family answered: the run breaks
    absent(school, COUNSELOR, c, "2026-09-14", "2026-09-15", "2026-09-16", "2026-09-17", "2026-09-18",
           "2026-09-20", "2026-09-21", "2026-09-22")  # 8 school days (the 20th is a swapped Sunday)
    absent(school, COUNSELOR, d, "2026-09-21", "2026-09-22", "2026-09-23", excused="是")

    dry = jobs.preview(school, REGISTRAR, "dropout", "2026-09-23")
    assert dry["period"] == "2026-09-23" and dry["count"] == 2
    assert [(r["student_number"], r["from"], r["to"]) for r in dry["rows"]] == [
        (a, "在读", "疑似辍学"), (c, "在读", "辍学")]
    assert status_events(school) == [] and count(school, CalendarRun) == 0

    assert jobs.run(school, ACADEMIC, "dropout", "2026-09-23")["affected"] == 2
    assert [status_of(school, n) for n in (a, b, c, d)] == ["suspected_dropout", "enrolled", "dropout", "enrolled"]
    assert status_events(school) == [(a, "enrolled", "suspected_dropout"), (c, "enrolled", "suspected_dropout"),
                                     (c, "suspected_dropout", "dropout")]
    with school.reading() as s:
        change = s.scalars(select(StatusChange).where(StatusChange.student_number == a)).one()
        assert change.evidence == "缺勤记录：2026-09-21、2026-09-22、2026-09-23"
    assert jobs.run(school, ACADEMIC, "dropout", "2026-09-23") == {
        "job": "dropout", "period": "2026-09-23", "affected": 0, "already_ran": True}
    assert len(status_events(school)) == 3

    # The suspected student stays away over Mid-autumn: the marked days still count, 7 → 辍学.
    absent(school, COUNSELOR, a, "2026-09-24", "2026-09-28", "2026-09-29")
    assert jobs.preview(school, REGISTRAR, "dropout", "2026-09-29")["count"] == 0  # 6 days
    absent(school, COUNSELOR, a, "2026-09-30")
    assert [r["to"] for r in jobs.preview(school, REGISTRAR, "dropout", "2026-09-30")["rows"]] == ["辍学"]
    assert jobs.run(school, REGISTRAR, "dropout", "2026-09-30")["affected"] == 1
    assert status_of(school, a) == "dropout" and status_events(school)[-1] == (a, "suspected_dropout", "dropout")

    listed = {r["student_number"]: r for r in jobs.suspected_dropouts(school, COUNSELOR)}
    assert set(listed) == {a, c} and listed[a]["run_days"] == 7 and listed[a]["last_absence"] == "2026-09-30"
    assert jobs.suspected_dropouts(school, OTHER_COUNSELOR) == []
    with pytest.raises(Invalid, match="晚于今天"):
        jobs.run(school, REGISTRAR, "dropout", (date.today() + timedelta(days=1)).isoformat())


def test_promotion_moves_enrolled_students_up_once(school: Database) -> None:
    third, repeating, suspended = enrol(school, "2023010101", 1, 2, 3)
    [final] = enrol(school, "2022010101", 1)
    with school.transaction() as s:
        s.get(Student, repeating).grade = 1  # type: ignore[union-attr]
    set_status(school, suspended, "suspended")

    with pytest.raises(Invalid, match="2026-08-01"):
        jobs.run(school, REGISTRAR, "promotion", "2026-07-31")
    dry = jobs.preview(school, REGISTRAR, "promotion", "2026-08-01")
    assert [(r["student_number"], r["from"], r["to"]) for r in dry["rows"]] == [
        (third, "3年级", "4年级"), (repeating, "1年级", "2年级")]
    assert [r["student_number"] for r in dry["held"]] == [final]
    assert [grade_of(school, n) for n in (third, repeating, final)] == [None, 1, None]

    assert jobs.run(school, REGISTRAR, "promotion", "2026-08-03")["affected"] == 2  # late but same year
    assert [grade_of(school, n) for n in (third, repeating, suspended, final)] == [4, 2, None, None]
    assert jobs.run(school, REGISTRAR, "promotion", "2026-08-04")["already_ran"]
    assert [grade_of(school, n) for n in (third, repeating)] == [4, 2]
    with school.reading() as s:
        [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == "calendar.promotion")).all()
        assert json.loads(entry.after or "{}")["to_grade"] == {"2": 1, "4": 1}
        assert verify_chain(s).ok
        run = s.get(CalendarRun, ("promotion", "2026"))
        assert run is not None and run.affected == 2 and json.loads(run.details or "{}")["held"] == 1
    assert status_events(school) == []
    # Once grades have moved on, this year's deadline cannot tell last year's final year any more.
    with pytest.raises(Invalid, match="升级已执行"):
        jobs.run(school, REGISTRAR, "graduation_deadline", "2026-08-03")


def test_graduation_deadline_lists_final_year_students_as_pending(school: Database) -> None:
    late, listed, graduated = enrol(school, "2022010101", 1, 2, 3)
    [third] = enrol(school, "2023010101", 1)
    set_status(school, graduated, "graduated")
    jobs.add_pending_graduation(school, COUNSELOR, third, "学分未修满", "2027-01-15")
    jobs.add_pending_graduation(school, REGISTRAR, listed, "论文答辩推迟")

    with pytest.raises(Invalid, match="之后"):
        jobs.run(school, ACADEMIC, "graduation_deadline", "2026-07-31")
    dry = jobs.preview(school, ACADEMIC, "graduation_deadline", "2026-07-31")
    assert [(r["student_number"], r["to"]) for r in dry["rows"]] == [(late, "待毕业")]
    assert count(school, PendingGraduation) == 2

    assert jobs.run(school, ACADEMIC, "graduation_deadline", "2026-08-01")["affected"] == 1
    assert jobs.run(school, ACADEMIC, "graduation_deadline", "2026-08-02")["already_ran"]
    rows = {r["student_number"]: r for r in jobs.pending_graduations(school, REGISTRAR)}
    assert set(rows) == {late, listed, third}
    assert rows[late]["expected_on"] == "2027-07-31" and rows[late]["created_by"] == ACADEMIC.username
    assert "2026-07-31" in rows[late]["reason"] and rows[late]["class_code"] == "2022010101"
    assert [r["student_number"] for r in jobs.pending_graduations(school, COUNSELOR)] == [third]


def test_timer_runs_what_is_due_in_calendar_order_once(school: Database) -> None:
    [final] = enrol(school, "2022010101", 1)
    third, other = enrol(school, "2023010101", 1, 2)
    absent(school, REGISTRAR, third, "2026-07-29", "2026-07-30", "2026-07-31")
    results = jobs.run_due(school, TIMER, today=D("2026-08-01"))  # welcome_end unset: not due
    assert [(r["job"], r["period"], r["affected"]) for r in results] == [
        ("dropout", "2026-07-31", 1), ("graduation_deadline", "2026", 1), ("promotion", "2026", 1)]
    assert status_of(school, third) == "suspected_dropout"
    assert [grade_of(school, n) for n in (final, third, other)] == [None, None, 4]
    assert [r["student_number"] for r in jobs.pending_graduations(school, REGISTRAR)] == [final]
    with school.reading() as s:
        change = s.scalars(select(StatusChange).where(StatusChange.student_number == third)).one()
        assert change.actor_kind == "system" and change.actor_id == "system:roster"
    assert jobs.run_due(school, TIMER, today=D("2026-08-01")) == []
    runs = jobs.calendar_runs(school, REGISTRAR)
    assert {(r["job"], r["period"]) for r in runs} == {
        ("dropout", "2026-07-31"), ("graduation_deadline", "2026"), ("promotion", "2026")}


def test_a_concurrent_second_run_waits_and_then_does_nothing(school: Database) -> None:
    if not school.is_postgres:
        pytest.skip("SQLite serialises writers; the key conflict is PostgreSQL's case")
    [number] = enrol(school, "2023010101", 1)
    absent(school, REGISTRAR, number, "2026-09-21", "2026-09-22", "2026-09-23")
    with school.sessions() as other:  # another instance, mid-run, holding the period's row uncommitted
        other.add(CalendarRun(job="dropout", period="2026-09-23", ran_at=datetime.now(UTC), actor="other",
                              affected=0))
        other.flush()
        racing = eventlet.spawn(jobs.run, school, ACADEMIC, "dropout", "2026-09-23")
        eventlet.sleep(0.5)
        assert not racing.dead  # blocked on the key
        other.commit()
    assert racing.wait()["already_ran"]
    assert status_of(school, number) == "enrolled" and status_events(school) == []


# ---- absences, reporting, pending graduations ----------------------------------------------------


def test_absences_are_entered_in_scope_and_upserted(school: Database) -> None:
    mine, = enrol(school, "2023010101", 1)
    theirs, = enrol(school, "2023010102", 1)
    assert absent(school, COUNSELOR, mine, "2026-09-21", note="未到校") == {
        "saved": 1, "created": 1, "updated": 0, "unchanged": 0}
    with pytest.raises(Forbidden):
        absent(school, COUNSELOR, theirs, "2026-09-21")
    with pytest.raises(Forbidden):  # unknown numbers look the same to a scoped caller
        absent(school, COUNSELOR, "209901010101", "2026-09-21")
    with pytest.raises(NotFound):
        absent(school, REGISTRAR, "209901010101", "2026-09-21")
    with pytest.raises(Forbidden):
        absent(school, HOUSING, mine, "2026-09-21")
    with pytest.raises(Forbidden):
        absent(school, DEPUTY, mine, "2026-09-21")  # reads the lists; counselors enter
    with pytest.raises(Invalid, match="第 1 条.*是否请假"):
        absent(school, COUNSELOR, mine, "2026-09-22", excused="也许")
    with pytest.raises(Invalid, match="晚于今天"):
        absent(school, COUNSELOR, mine, (date.today() + timedelta(days=1)).isoformat())
    assert absent(school, COUNSELOR, mine, "2026-09-21", reachable=True, note="未到校")["updated"] == 1
    assert absent(school, COUNSELOR, mine, "2026-09-21", reachable=True, note="未到校")["unchanged"] == 1
    [row] = jobs.absences(school, DEPUTY, class_code="2023010101")
    assert (row["day"], row["reachable"], row["entered_by"]) == ("2026-09-21", True, COUNSELOR.username)
    assert jobs.absences(school, OTHER_COUNSELOR) == []
    set_status(school, theirs, "graduated")
    with pytest.raises(Invalid, match="毕业"):
        absent(school, REGISTRAR, theirs, "2026-09-21")
    with school.reading() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.action == "absence.record")) == 2
        assert verify_chain(s).ok


def absence_sheet(rows: list[dict[str, Any]]) -> str:
    return base64.b64encode(export(jobs.ABSENCE_COLUMNS, rows, "缺勤登记")).decode()


def test_absence_import_is_checked_cell_by_cell_all_or_nothing(school: Database) -> None:
    a, b = enrol(school, "2023010101", 1, 2)
    theirs, = enrol(school, "2023010102", 1)
    template = load_workbook(io.BytesIO(base64.b64decode(jobs.absence_template(school, COUNSELOR)["content"])))
    headers = [c.value for c in template.worksheets[0][1]]
    assert headers == ["学号", "姓名", "缺勤日期", "是否请假", "是否联系上", "备注"]

    bad = absence_sheet([
        {"student_number": a, "name": "学生零一", "day": "2026-09-21", "excused": "否", "reachable": "否"},
        {"student_number": b, "name": "别人", "day": "2026-09-21"},
        {"student_number": theirs, "day": "2026-09-21"},
        {"student_number": a, "day": "2026-9-31", "excused": "也许"},
        {"student_number": a, "day": "2026-09-21"},
    ])
    result = jobs.import_absences(school, COUNSELOR, bad)
    assert not result["ok"] and result["saved"] == 0 and count(school, Absence) == 0
    assert [(e["row"], e["column"], e["header"]) for e in result["errors"]] == [
        (3, "B", "姓名"), (4, "A", "学号"), (5, "C", "缺勤日期"), (5, "D", "是否请假"), (6, "C", "缺勤日期")]
    assert "第 2 行" in result["errors"][-1]["message"]
    annotated = load_workbook(io.BytesIO(base64.b64decode(result["annotated"])))
    assert "姓名与学号不符" in annotated.worksheets[0]["B3"].comment.text
    assert [r[0].value for r in annotated[ERROR_SHEET].iter_rows(min_row=2)] == [3, 4, 5, 5, 6]

    good = absence_sheet([
        {"student_number": a, "name": "学生零一", "day": D("2026-09-21"), "excused": "否", "reachable": "否"},
        {"student_number": b, "day": "2026-09-21", "excused": "是", "note": "病假"},
    ])
    assert jobs.import_absences(school, COUNSELOR, good)["created"] == 2
    assert jobs.import_absences(school, COUNSELOR, good)["unchanged"] == 2
    assert [(r["student_number"], r["excused"]) for r in jobs.absences(school, COUNSELOR)] == [(a, False), (b, True)]
    with pytest.raises(Invalid, match="Excel"):
        jobs.import_absences(school, COUNSELOR, base64.b64encode(b"not a workbook").decode())


def test_reporting_needs_scope(school: Database) -> None:
    mine, = enrol(school, "2023010101", 1)
    theirs, = enrol(school, "2023010102", 1)
    with pytest.raises(Forbidden):
        jobs.mark_reported(school, COUNSELOR, [mine, theirs])
    with school.reading() as s:
        assert s.get(Student, mine).reported_at is None  # type: ignore[union-attr]
    assert jobs.mark_reported(school, COUNSELOR, [mine])["marked"] == 1
    with pytest.raises(Invalid):
        jobs.mark_reported(school, COUNSELOR, [])


def test_pending_graduation_entries_by_hand(school: Database) -> None:
    mine, other_mine = enrol(school, "2023010101", 1, 2)
    theirs, = enrol(school, "2023010102", 1)
    entry = jobs.add_pending_graduation(school, COUNSELOR, mine, "体育成绩未达标", "2027-01-15")
    assert (entry["state"], entry["expected_on"], entry["created_by"]) == ("open", "2027-01-15", COUNSELOR.username)
    with pytest.raises(Conflict):
        jobs.add_pending_graduation(school, ACADEMIC, mine, "重复")
    with pytest.raises(Forbidden):
        jobs.add_pending_graduation(school, COUNSELOR, theirs, "不在范围")
    with pytest.raises(Forbidden):
        jobs.add_pending_graduation(school, HOUSING, mine, "宿管不能登记")
    with pytest.raises(Invalid, match="原因"):
        jobs.add_pending_graduation(school, COUNSELOR, other_mine, " ")
    set_status(school, other_mine, "suspended")
    with pytest.raises(Invalid, match="在读"):
        jobs.add_pending_graduation(school, COUNSELOR, other_mine, "休学中")
    deputy = jobs.add_pending_graduation(school, DEPUTY, theirs, "延期答辩")
    assert [r["student_number"] for r in jobs.pending_graduations(school, OTHER_COUNSELOR)] == [theirs]

    with pytest.raises(Forbidden):
        jobs.close_pending_graduation(school, OTHER_COUNSELOR, entry["id"], "不在范围")
    closed = jobs.close_pending_graduation(school, COUNSELOR, entry["id"], "已补考通过")
    assert closed["state"] == "closed" and closed["closed_reason"] == "人工关闭：已补考通过"
    with pytest.raises(Conflict):
        jobs.close_pending_graduation(school, COUNSELOR, entry["id"])
    with pytest.raises(NotFound):
        jobs.close_pending_graduation(school, REGISTRAR, 999999)
    assert [r["id"] for r in jobs.pending_graduations(school, REGISTRAR)] == [deputy["id"]]
    assert [r["id"] for r in jobs.pending_graduations(school, REGISTRAR, "closed")] == [entry["id"]]
    assert len(jobs.pending_graduations(school, REGISTRAR, "")) == 2


def test_the_service_exposes_the_rpcs_and_an_hourly_timer() -> None:
    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
    from nameko.rpc import Rpc
    from nameko.timer import Timer

    from services.roster.service import RosterService

    def entrypoints(name: str) -> list[Any]:
        return list(getattr(getattr(RosterService, name), ENTRYPOINT_EXTENSIONS_ATTR, ()))

    for name in ("calendar_preview", "calendar_run", "calendar_runs", "record_absences", "import_absences",
                 "absence_template", "absences", "suspected_dropouts", "mark_reported", "pending_graduations",
                 "add_pending_graduation", "close_pending_graduation"):
        assert [type(e) for e in entrypoints(name)] == [Rpc], name
    [tick] = entrypoints("run_calendar_jobs")
    assert isinstance(tick, Timer) and tick.interval == 3600  # ROSTER_CALENDAR_INTERVAL unset in tests
