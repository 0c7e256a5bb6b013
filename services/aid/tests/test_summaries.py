"""Home counts (issue 9): each reviewer's queue in scope, a student's own applications, and the
aided register filtered by programme as the dashboard's bar counts it; SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.aid import applications, registers, reporting, summaries
from services.aid.tests.factories import caller
from services.aid.tests.flow import (
    AUDITOR,
    CLASS,
    COUNSELOR,
    DEPUTY,
    OPERATOR,
    YEAR,
    allocate,
    apply,
    approve_through,
    enrol,
    identify,
    number,
    student,
)
from services.common.db import Database

OTHER_CLASS = "2025010102"  # same college, another counselor
OTHER_COUNSELOR = caller("counselor", "classes", OTHER_CLASS)


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("aid")


def test_each_reviewer_counts_only_their_step_in_their_scope(db: Database) -> None:
    a, b, c = number(1), number(2), number(3, OTHER_CLASS)
    enrol(db, a, b, c)
    for serial, n in enumerate((a, b, c), start=1):
        identify(db, n, serial=serial, who=OPERATOR)
    for level, extra in (("programme", {}), ("college", {"college_code": "01"}),
                         ("class", {"class_code": CLASS, "college_code": "01"}),
                         ("class", {"class_code": OTHER_CLASS, "college_code": "01"})):
        registers.allocate_quota(db, OPERATOR, {"programme_code": "GJZXJ", "academic_year": YEAR, "level": level,
                                                "places": 10 if level != "class" else 5, **extra})
    apps = {n: apply(db, n)["id"] for n in (a, b, c)}

    def counts() -> dict[str, int]:
        return {who.role + ("2" if who is OTHER_COUNSELOR else ""): summaries.home_counts(db, who)["review_queue"]
                for who in (COUNSELOR, OTHER_COUNSELOR, DEPUTY, OPERATOR, AUDITOR)}

    assert counts() == {"counselor": 2, "counselor2": 1, "deputy_secretary": 0, "aid_operator": 0, "aid_auditor": 0}
    approve_through(db, apps[a], 1)
    approve_through(db, apps[c], 0)
    applications.review_application(db, OTHER_COUNSELOR, apps[c], "approve")
    assert counts() == {"counselor": 1, "counselor2": 0, "deputy_secretary": 2, "aid_operator": 0, "aid_auditor": 0}
    approve_through(db, apps[b], 3)
    assert counts() == {"counselor": 0, "counselor2": 0, "deputy_secretary": 2, "aid_operator": 0, "aid_auditor": 1}
    for who in (COUNSELOR, DEPUTY, AUDITOR):  # each count is the total of the queue it leads to
        assert summaries.home_counts(db, who)["review_queue"] == applications.review_queue(db, who)["total"]
    assert summaries.home_counts(db, student(a)) == {"own_applications": 1}
    assert summaries.home_counts(db, caller("counselor", "none")) == {"review_queue": 0}
    assert summaries.home_counts(db, caller("housing_centre")) == {}


def test_aided_register_by_programme_matches_the_summary(db: Database) -> None:
    a, b = number(1), number(2)
    enrol(db, a, b)
    identify(db, a, serial=1)
    identify(db, b, serial=2)
    allocate(db, "GJZXJ", 5)
    for n in (a, b):
        approve_through(db, apply(db, n)["id"])
    summary = reporting.summary(db, OPERATOR, YEAR)
    assert [(p["programme_code"], p["count"]) for p in summary["by_programme"]] == [("GJZXJ", 2)]
    assert applications.aided_register(db, OPERATOR, YEAR, 1, 100, "GJZXJ")["total"] == 2
    assert applications.aided_register(db, OPERATOR, YEAR, 1, 100, "GJJXJ")["total"] == 0
    assert CLASS == a[:10]
