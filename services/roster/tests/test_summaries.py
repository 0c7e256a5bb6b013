"""Home counts and the dashboard's status-change chart (issue 9) against real SQLite and PostgreSQL:
each count stays inside the caller's scope, and the list behind a chart bar holds exactly its rows."""

from __future__ import annotations

import pytest

from services.common.caller import Caller, Scope
from services.common.db import Database
from services.common.errors import Forbidden, Invalid
from services.roster import calendar_jobs, changes, handlers, importing, statistics, status_changes, summaries
from services.roster.tests.test_import import COUNSELOR, IT, REGISTRAR, db, person, workbook  # noqa: F401

ACADEMIC = Caller("1000003", "1000003", "academic_affairs", Scope("institution"))
DEPUTY = Caller("1000007", "1000007", "deputy_secretary", Scope("college", ("01",)))
OTHER_COUNSELOR = Caller("1000005", "1000005", "counselor", Scope("classes", ("2023010102",)))
AUTHORITY = Caller("1000009", "1000009", "authority", Scope("institution"))
STUDENT = Caller("s1", "202301010101", "student", Scope("self", ("202301010101",)))
OWN, OTHER = "2023010101", "2023010102"


@pytest.fixture
def roster(db: Database) -> Database:  # noqa: F811
    rows = [person(seat) for seat in range(1, 7)] + [person(seat, klass=OTHER) for seat in range(1, 5)]
    assert importing.import_students(db, IT, workbook(rows))["ok"]
    # October: one suspension in each class; November: two in the counselor's class, one 疑似辍学 in the other.
    status_changes.apply_status_change(db, ACADEMIC, f"{OWN}01", "suspend", "2026-10-12", "因病休学", "医院证明")
    status_changes.apply_status_change(db, ACADEMIC, f"{OTHER}01", "suspend", "2026-10-20", "因病休学", "医院证明")
    status_changes.apply_status_change(db, ACADEMIC, f"{OWN}02", "suspend", "2026-11-02", "因病休学", "医院证明")
    status_changes.apply_status_change(db, ACADEMIC, f"{OWN}03", "withdraw", "2026-11-30", "本人申请", "申请书")
    status_changes.apply_status_change(db, OTHER_COUNSELOR, f"{OTHER}02", "suspected_dropout", "2026-11-05",
                                       "连续缺勤", "缺勤记录")
    status_changes.apply_status_change(db, COUNSELOR, f"{OWN}04", "suspected_dropout", "2026-12-01",
                                       "连续缺勤", "缺勤记录")  # next month: outside the window below
    calendar_jobs.add_pending_graduation(db, COUNSELOR, f"{OWN}05", "学分未满")
    calendar_jobs.add_pending_graduation(db, OTHER_COUNSELOR, f"{OTHER}03", "学分未满")
    changes.submit_change_request(db, STUDENT, "202301010101", {"phone": "13700000000"}, "换号")
    return db


def cells(result: dict) -> dict[tuple[str, str], int]:
    return {(r["month"], r["kind"]): r["count"] for r in result["rows"]}


def test_status_change_counts_by_month_and_kind_stay_in_scope(roster: Database) -> None:
    everyone = summaries.status_change_counts(roster, REGISTRAR, 2, "2026-11")
    assert everyone["months"] == ["2026-10", "2026-11"]
    assert cells(everyone) == {("2026-10", "suspend"): 2, ("2026-11", "suspend"): 1, ("2026-11", "withdraw"): 1,
                               ("2026-11", "suspected_dropout"): 1}
    assert {k["kind"]: k["label"] for k in everyone["kinds"]}["withdraw"] == "退学"
    own = summaries.status_change_counts(roster, COUNSELOR, 2, "2026-11")
    assert cells(own) == {("2026-10", "suspend"): 1, ("2026-11", "suspend"): 1, ("2026-11", "withdraw"): 1}
    assert summaries.status_change_counts(roster, COUNSELOR, 1, "2026-12")["total"] == 1  # the 1 December one
    with pytest.raises(Forbidden):
        summaries.status_change_counts(roster, STUDENT, 2, "2026-11")
    with pytest.raises(Invalid):
        summaries.status_change_counts(roster, REGISTRAR, 0)
    with pytest.raises(Invalid):
        summaries.status_change_counts(roster, REGISTRAR, 2, "2026-13")


def test_the_list_behind_each_bar_has_exactly_its_rows(roster: Database) -> None:
    for caller in (REGISTRAR, COUNSELOR, DEPUTY, OTHER_COUNSELOR):
        for (month, kind), n in cells(summaries.status_change_counts(roster, caller, 3, "2026-12")).items():
            listed = summaries.status_changes(roster, caller, month, kind, 1, 100)
            assert listed["total"] == len(listed["items"]) == n, (caller.username, month, kind)
            assert {i["kind"] for i in listed["items"]} == {kind}
            assert all(i["effective_on"].startswith(month) for i in listed["items"])
    mine = summaries.status_changes(roster, COUNSELOR, "2026-11", "", 1, 100)
    assert sorted(i["student_number"] for i in mine["items"]) == [f"{OWN}02", f"{OWN}03"]


def test_a_revocation_is_its_own_kind(roster: Database) -> None:
    change_id = status_changes.timeline(roster, ACADEMIC, f"{OWN}02")[-1]["id"]
    status_changes.revoke_status_change(roster, ACADEMIC, change_id, "误办")
    result = summaries.status_change_counts(roster, REGISTRAR, 1, "2026-11")
    assert cells(result)[("2026-11", summaries.REVOCATION)] == 1  # effective on the revoked change's date
    listed = summaries.status_changes(roster, REGISTRAR, "2026-11", summaries.REVOCATION)
    assert [i["kind_label"] for i in listed["items"]] == ["撤销"]


def test_home_counts_per_role_in_scope(roster: Database) -> None:
    assert summaries.home_counts(roster, COUNSELOR) == {
        "change_requests": 1, "suspected_dropouts": 1, "pending_graduations": 1}
    assert summaries.home_counts(roster, OTHER_COUNSELOR) == {
        "change_requests": 0, "suspected_dropouts": 1, "pending_graduations": 1}
    assert summaries.home_counts(roster, DEPUTY) == {
        "change_requests": 1, "suspected_dropouts": 2, "pending_graduations": 2}
    office = summaries.home_counts(roster, REGISTRAR)
    assert office == {"change_requests": 0, "problem_records": 0, "clearance_problems": 0,
                      "status_applications": 0, "suspected_dropouts": 2, "pending_graduations": 2}
    assert summaries.home_counts(roster, AUTHORITY) == {"status_applications": 0}
    assert summaries.home_counts(roster, STUDENT) == {"own_change_requests": 1}
    # The counselor approves: the request now waits for student affairs.
    request_id = changes.list_change_requests(roster, COUNSELOR, "pending_counselor")[0]["id"]
    changes.review_change_request(roster, COUNSELOR, request_id, True)
    assert summaries.home_counts(roster, COUNSELOR)["change_requests"] == 0
    assert summaries.home_counts(roster, REGISTRAR)["change_requests"] == 1
    # Each count is the length of the list it leads to.
    assert summaries.home_counts(roster, DEPUTY)["suspected_dropouts"] == \
        len(calendar_jobs.suspected_dropouts(roster, DEPUTY))
    assert summaries.home_counts(roster, COUNSELOR)["pending_graduations"] == \
        len(calendar_jobs.pending_graduations(roster, COUNSELOR))


def test_student_list_filters_match_the_enrolment_statistics(roster: Database) -> None:
    for caller in (REGISTRAR, COUNSELOR):
        for by, param in (("college", "college_code"), ("grade", "grade"), ("gender", "gender"),
                          ("ethnicity", "ethnicity")):
            for row in statistics.statistics(roster, caller, by)["rows"]:
                listed = handlers.search_students(roster, caller, "", 1, 100, **{param: row["key"], "counted": True})
                assert listed["total"] == row["count"], (caller.username, by, row)
    # Without `counted` the list also holds those who left (the 退学 one).
    assert handlers.search_students(roster, COUNSELOR, "", 1, 100, grade="2023")["total"] == 6
    assert handlers.search_students(roster, COUNSELOR, "", 1, 100, grade="2023", counted=True)["total"] == 5
