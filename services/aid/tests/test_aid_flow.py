"""Aid use cases against a real, migrated database (SQLite and PostgreSQL): identification, quotas,
the review chain with returns, the aided register and instalments, consistency, masking and audit."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from services.aid import applications, handlers, registers
from services.aid.adapters.orm import QuotaRow
from services.aid.tests.factories import caller, status_changed
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
from services.common.errors import Conflict, Forbidden, Invalid, NotFound
from services.common.models import AuditEntry


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("aid")


def actions(db: Database) -> list[str]:
    with db.reading() as s:
        return list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def quota(db: Database, level: str) -> tuple[int, int]:
    with db.reading() as s:
        row = s.scalars(select(QuotaRow).where(QuotaRow.level == level)).one()
        return row.used_places, row.used_funds


def test_identification_is_scoped_masked_and_audited(db: Database) -> None:
    a = number(1)
    enrol(db, a)
    view = identify(db, a, "特别困难")
    assert view["id_number"].startswith("1101") and "*" in view["id_number"] and view["income_per_capita"] == "****"
    assert (view["collected_by"], view["collected_role"]) == ("counselor01", "counselor")
    with pytest.raises(Forbidden):  # students do not identify themselves
        registers.identify_needy(db, student(a), {"student_number": a})
    with pytest.raises(Forbidden):  # another class's counselor
        identify(db, a, who=caller("counselor", "classes", "2099010101"))
    with pytest.raises(Invalid, match="证明材料"):
        registers.identify_needy(db, OPERATOR, {"student_number": a, "academic_year": YEAR, "level": "困难",
                                                "reasons": "x"})
    assert registers.needy_record(db, OPERATOR, a, YEAR)["masked"] is True
    shown = registers.needy_record(db, OPERATOR, a, YEAR, reveal=True)
    assert shown["income_per_capita"] == 3200 and "*" not in shown["id_number"]
    assert registers.needy_record(db, COUNSELOR, a, YEAR, reveal=True)["masked"] is True  # only the aid centre
    assert registers.needy_record(db, student(a), a, YEAR)["level"] == "特别困难"
    with pytest.raises(Forbidden):
        registers.needy_record(db, student(number(2)), a, YEAR)
    with pytest.raises(NotFound):
        registers.needy_record(db, OPERATOR, number(9), YEAR)
    with pytest.raises(Forbidden):  # scoped callers cannot probe numbers
        registers.needy_record(db, COUNSELOR, number(9), YEAR)
    assert registers.needy_register(db, DEPUTY, YEAR)["total"] == 1
    assert actions(db)[-6:] == ["needy.identify", "needy.view", "needy.reveal", "needy.view", "needy.view",
                                "needy.list"]
    with db.reading() as s:  # the audit log keeps masked values only
        after = s.scalars(select(AuditEntry.after).where(AuditEntry.action == "needy.identify")).one()
    assert "3200" not in (after or "") and "****" in (after or "")


def test_needy_must_be_enrolled(db: Database) -> None:
    a = number(1)
    enrol(db, a)
    handlers.on_student_status_changed(db, status_changed(a, 5, "withdrawn", left=True))
    with pytest.raises(Conflict, match="离校"):
        identify(db, a)


def test_quotas_are_allocated_top_down(db: Database) -> None:
    registers.allocate_quota(db, OPERATOR, {"programme_code": "GJZXJ", "academic_year": YEAR, "level": "programme",
                                            "places": 10, "funds": 37000})
    with pytest.raises(Conflict, match="请先分配学院"):
        registers.allocate_quota(db, OPERATOR, {"programme_code": "GJZXJ", "academic_year": YEAR, "level": "class",
                                                "class_code": CLASS, "places": 1})
    registers.allocate_quota(db, OPERATOR, {"programme_code": "GJZXJ", "academic_year": YEAR, "level": "college",
                                            "college_code": "01", "places": 6, "funds": 22200})
    with pytest.raises(Conflict, match="可分配 4 个"):
        registers.allocate_quota(db, OPERATOR, {"programme_code": "GJZXJ", "academic_year": YEAR,
                                                "level": "college", "college_code": "02", "places": 5})
    with pytest.raises(Forbidden):  # colleges are the aid centre's to allocate
        registers.allocate_quota(db, DEPUTY, {"programme_code": "GJZXJ", "academic_year": YEAR, "level": "college",
                                              "college_code": "01", "places": 1})
    # the college splits its own places among its classes
    registers.allocate_quota(db, DEPUTY, {"programme_code": "GJZXJ", "academic_year": YEAR, "level": "class",
                                          "class_code": CLASS, "places": 4})
    with pytest.raises(Conflict, match="可分配 2 个"):
        registers.allocate_quota(db, DEPUTY, {"programme_code": "GJZXJ", "academic_year": YEAR, "level": "class",
                                              "class_code": "2025010102", "places": 3})
    with pytest.raises(Forbidden):
        registers.allocate_quota(db, DEPUTY, {"programme_code": "GJZXJ", "academic_year": YEAR, "level": "class",
                                              "class_code": "2025020101", "places": 1})
    listed = registers.list_quotas(db, DEPUTY, "GJZXJ", YEAR)
    assert sorted((q["level"], q["unit_code"], q["places"]) for q in listed) == [
        ("class", CLASS, 4), ("college", "01", 6), ("programme", "", 10)]


def test_the_review_chain_with_a_return_and_resubmission(db: Database) -> None:
    a = number(1)
    enrol(db, a)
    identify(db, a, "特别困难")
    allocate(db, "GJZXJ", 2)
    app = apply(db, a)
    assert (app["status"], app["amount"], app["collected_by"]) == ("applied", 4400, "student01")
    with pytest.raises(Forbidden, match="辅导员"):  # not yet the college's step
        applications.review_application(db, DEPUTY, app["id"], "approve")
    applications.review_application(db, COUNSELOR, app["id"], "approve")
    assert quota(db, "class") == (1, 4400) and quota(db, "programme") == (1, 4400)
    assert applications.review_queue(db, DEPUTY)["total"] == 1
    assert applications.review_queue(db, COUNSELOR)["total"] == 0
    with pytest.raises(Conflict, match="原因"):
        applications.review_application(db, DEPUTY, app["id"], "return")
    returned = applications.review_application(db, DEPUTY, app["id"], "return", "证明材料不清晰")
    assert returned["status"] == "returned" and quota(db, "class") == (0, 0)  # the place is given back
    with pytest.raises(Conflict, match="不在审核环节"):
        applications.review_application(db, COUNSELOR, app["id"], "approve")
    again = apply(db, a, statement="已补充材料")
    assert again["id"] == app["id"] and again["status"] == "applied"
    done = approve_through(db, app["id"])
    assert done["status"] == "audited"
    seen = applications.get_application(db, OPERATOR, app["id"])
    assert [(r["decision"], r["reviewer"]) for r in seen["reviews"]] == [
        ("submit", "student01"), ("approve", "counselor01"), ("return", "deputy_secretary01"),
        ("submit", "student01"), ("approve", "counselor01"), ("approve", "deputy_secretary01"),
        ("approve", "aid_operator01"), ("approve", "aid_auditor01")]
    assert seen["reviews"][2]["reason"] == "证明材料不清晰"
    register = applications.aided_register(db, OPERATOR, YEAR)
    assert [(i["student_number"], i["amount"]) for i in register["items"]] == [(a, 4400)]
    mine = applications.my_aid(db, student(a))
    assert len(mine["instalments"]) == 10 and mine["applications"][0]["status_label"] == "待报送"
    with pytest.raises(Forbidden):
        applications.get_application(db, student(number(2)), app["id"])


def test_eligibility_is_checked_at_every_step(db: Database) -> None:
    a = number(1)
    enrol(db, a)
    with pytest.raises(Conflict, match="家庭经济困难"):
        apply(db, a)
    identify(db, a, "困难")
    allocate(db, "GJZXJ", 1)
    app = apply(db, a)
    approve_through(db, app["id"], steps=2)
    identify(db, a, "不困难")  # re-identified meanwhile
    with pytest.raises(Conflict, match="请退回"):
        applications.review_application(db, OPERATOR, app["id"], "approve")


def test_quota_is_checked_and_exhausted(db: Database) -> None:
    a, b = number(1), number(2)
    enrol(db, a, b)
    identify(db, a, serial=1)
    identify(db, b, serial=2)
    app_a, app_b = apply(db, a), apply(db, b)
    with pytest.raises(Conflict, match="尚未分配名额"):
        applications.review_application(db, COUNSELOR, app_a["id"], "approve")
    allocate(db, "GJZXJ", 1)
    applications.review_application(db, COUNSELOR, app_a["id"], "approve")
    with pytest.raises(Conflict, match="已用完"):
        applications.review_application(db, COUNSELOR, app_b["id"], "approve")
    assert quota(db, "class") == (1, 3700)


def test_a_leaver_is_flagged_and_gets_no_further_instalment(db: Database) -> None:
    a, b = number(1), number(2)
    enrol(db, a, b)
    allocate(db, "GJZXJ", 2)
    for serial, n in enumerate((a, b), start=1):
        identify(db, n, serial=serial)
        approve_through(db, apply(db, n)["id"])
    first = applications.pay_instalments(db, OPERATOR, _first_due(db, a))
    assert first["paid"] == 2
    handlers.on_student_status_changed(db, status_changed(a, 9, "withdrawn", left=True))
    later = applications.pay_instalments(db, OPERATOR, "2099-12-31")
    assert later["stopped"] == 9 and later["paid"] == 9 and later["stopped_students"] == [a]
    states = {i["state"] for i in applications.student_instalments(db, OPERATOR, a)["instalments"][1:]}
    assert states == {"stopped"}
    result = registers.consistency_check(db, OPERATOR, YEAR)
    assert [(v["rule"], v["student_number"]) for v in result["violations"]] == [("needy_left", a)]
    with pytest.raises(Conflict, match="离校"):
        applications.apply(db, OPERATOR, {"student_number": a, "programme_code": "LSTD", "academic_year": YEAR,
                                          "statement": "x"})


def _first_due(db: Database, n: str) -> str:
    return applications.student_instalments(db, OPERATOR, n)["instalments"][0]["due_on"]


def test_only_aid_roles_reach_the_registers(db: Database) -> None:
    for role in ("student_affairs", "housing_centre", "academic_affairs", "it_centre"):
        with pytest.raises(Forbidden):
            registers.needy_register(db, caller(role), YEAR)
        with pytest.raises(Forbidden):
            applications.aided_register(db, caller(role), YEAR)
    with pytest.raises(Forbidden):
        registers.consistency_check(db, COUNSELOR, YEAR)
    assert AUDITOR.role == "aid_auditor"


def test_identification_results_imported_at_once_all_or_nothing(db: Database) -> None:
    a, b, gone = number(1), number(2), number(3)
    enrol(db, a, b, gone)
    handlers.on_student_status_changed(db, status_changed(gone, 4, "withdrawn", left=True))
    row = {"academic_year": YEAR, "level": "困难", "reasons": "单亲家庭", "evidence": ["证明"]}
    bad = registers.identify_many(db, COUNSELOR, [{**row, "student_number": a},
                                                  {**row, "student_number": gone},
                                                  {**row, "student_number": "2099010101" + "01"},
                                                  {**row, "student_number": b, "level": "很困难"}])
    assert bad["saved"] == 0 and [e["index"] for e in bad["errors"]] == [1, 2, 3]
    assert registers.needy_register(db, OPERATOR, YEAR)["total"] == 0
    good = registers.identify_many(db, COUNSELOR, [{**row, "student_number": a}, {**row, "student_number": b}])
    assert good["saved"] == 2
    assert registers.needy_register(db, OPERATOR, YEAR)["total"] == 2
    assert actions(db).count("needy.identify") == 2


def test_batch_review_refuses_some_without_undoing_the_others(db: Database) -> None:
    numbers = [number(i) for i in range(1, 5)]
    enrol(db, *numbers)
    for serial, n in enumerate(numbers, start=1):
        identify(db, n, serial=serial)
    allocate(db, "GJZXJ", 2)
    ids = [apply(db, n)["id"] for n in numbers]
    result = applications.review_many(db, COUNSELOR, ids, "approve")
    assert result["done"] == 2 and [r["id"] for r in result["refused"]] == ids[2:]
    assert "已用完" in result["refused"][0]["message"]
    assert quota(db, "class") == (2, 7400)
    assert applications.review_queue(db, DEPUTY)["total"] == 2
    assert applications.review_queue(db, COUNSELOR)["total"] == 2
