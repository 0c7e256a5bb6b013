"""Funds-only allocations (A2) and the batch review's preloaded checks, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from services.aid import applications, registers
from services.aid.adapters.orm import Application, QuotaRow, Review
from services.aid.domain import quotas
from services.aid.tests.flow import (
    AUDITOR,
    COUNSELOR,
    DEPUTY,
    OPERATOR,
    YEAR,
    allocate,
    apply,
    enrol,
    identify,
    number,
)
from services.common.db import Database
from services.common.errors import Conflict
from services.common.models import AuditEntry

OTHER_CLASS = "2025010102"


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("aid")


def used(db: Database) -> dict[str, tuple[int | None, int, int | None, int]]:
    """(places, used places, funds, used funds) by level."""
    with db.reading() as s:
        return {q.level: (q.places, q.used_places, q.funds, q.used_funds) for q in s.scalars(select(QuotaRow))}


def needy_applicants(db: Database, count: int, klass: str = "2025010101", first_serial: int = 1) -> list[int]:
    numbers = [number(i, klass) for i in range(1, count + 1)]
    enrol(db, *numbers)
    for serial, n in enumerate(numbers, start=first_serial):
        identify(db, n, serial=serial, who=DEPUTY)  # the college covers both classes
    return [apply(db, n)["id"] for n in numbers]


# -- funds only ----------------------------------------------------------------------------------
def test_the_rules_accept_an_allocation_without_places() -> None:
    programme = quotas.Quota(quotas.PROGRAMME, "", None, 10_000)
    assert quotas.allocation_problems(quotas.COLLEGE, None, 6_000, programme, 0, 4_000, None) == []
    assert "可分配 6000 元" in quotas.allocation_problems(quotas.COLLEGE, None, 6_001, programme, 0, 4_000, None)[0]
    # a child may limit places under a funds-only parent, and leave them open under a limited one
    assert quotas.allocation_problems(quotas.COLLEGE, 3, None, programme, 0, 0, None) == []
    assert quotas.allocation_problems(quotas.CLASS, None, 100, quotas.Quota(quotas.COLLEGE, "01", 2, 200), 2, 0,
                                      None) == []
    nothing = quotas.allocation_problems(quotas.PROGRAMME, None, None, None, 0, 0, None)
    assert nothing == ["请填写名额或资金（至少一项）"]
    used_up = quotas.Quota(quotas.PROGRAMME, "", None, 10_000, used_places=3, used_funds=9_000)
    assert "不能减少到 8000 元" in quotas.allocation_problems(quotas.PROGRAMME, None, 8_000, None, 0, 0, used_up)[0]
    assert quotas.has_room(used_up, 1_000) and not quotas.has_room(used_up, 1_001)


def test_a_funds_only_allocation_grants_until_the_money_runs_out(db: Database) -> None:
    ids = needy_applicants(db, 4)
    allocate(db, "GJZXJ", None, 2 * 3700)  # places unlimited at every level
    assert used(db)["class"] == (None, 0, 7400, 0)
    assert registers.list_quotas(db, OPERATOR, "GJZXJ", YEAR)[0]["places"] is None
    applications.review_application(db, COUNSELOR, ids[0], "approve")
    result = applications.review_many(db, COUNSELOR, ids[1:], "approve")
    assert result["done"] == 1 and [r["id"] for r in result["refused"]] == ids[2:]
    assert all("名额或资金已用完" in r["message"] for r in result["refused"])
    assert used(db) == {level: (None, 2, 7400, 7400) for level in ("programme", "college", "class")}
    # a return gives the money back, and the next approval can take it
    applications.review_application(db, DEPUTY, ids[0], "return", "材料不全")
    applications.review_application(db, COUNSELOR, ids[2], "approve")
    assert used(db)["class"] == (None, 2, 7400, 7400)


def test_an_allocation_needs_places_or_funds(db: Database) -> None:
    with pytest.raises(Conflict, match="至少一项"):
        registers.allocate_quota(db, OPERATOR, {"programme_code": "GJZXJ", "academic_year": YEAR,
                                                "level": "programme", "places": "", "funds": None})


# -- review_many: loaded up front, each application still checked as if alone --------------------------
def test_a_batch_with_repeats_strangers_and_a_full_class(db: Database) -> None:
    ids = needy_applicants(db, 3)
    foreign = needy_applicants(db, 1, OTHER_CLASS, first_serial=10)
    allocate(db, "GJZXJ", 2)
    batch = [ids[0], ids[0], 999_999, foreign[0], ids[1], ids[2]]
    result = applications.review_many(db, COUNSELOR, batch, "approve")
    refused = {(r["id"], r["message"]) for r in result["refused"]}
    assert result["done"] == 2
    assert {i for i, _ in refused} == {ids[0], 999_999, foreign[0], ids[2]}
    # the repeat met its own first decision: the counselor step is over
    assert any(i == ids[0] and "学院审核" in m for i, m in refused)
    assert any(i == 999_999 and "不在您的数据权限范围内" in m for i, m in refused)
    assert any(i == ids[2] and "已用完" in m for i, m in refused)
    assert used(db)["class"] == (2, 2, None, 7400)
    with db.reading() as s:
        taken = {a.id: (a.status, a.quota_taken, a.quota_class_code) for a in s.scalars(select(Application))}
        reviews = s.scalars(select(Review.application_id).where(Review.decision == "approve")).all()
        audited = s.scalars(select(AuditEntry.target).where(AuditEntry.action == "application.approve")).all()
    assert taken[ids[0]] == ("counselor_passed", True, "2025010101") and taken[ids[2]][:2] == ("applied", False)
    assert sorted(reviews) == ids[:2] and sorted(audited) == [f"application:{i}" for i in ids[:2]]


def test_a_batch_return_gives_each_place_back(db: Database) -> None:
    ids = needy_applicants(db, 3)
    allocate(db, "GJZXJ", 3, 3 * 4400)
    assert applications.review_many(db, COUNSELOR, ids, "approve")["done"] == 3
    assert used(db)["college"] == (3, 3, 13200, 11100)
    result = applications.review_many(db, DEPUTY, ids[:2], "return", "请补充材料")
    assert result == {"done": 2, "refused": []}
    assert used(db) == {level: (3, 1, 13200, 3700) for level in ("programme", "college", "class")}
    assert applications.review_queue(db, DEPUTY)["total"] == 1


def test_a_batch_runs_the_whole_chain_to_the_award(db: Database) -> None:
    ids = needy_applicants(db, 2)
    allocate(db, "GJZXJ", 2)
    for who in (COUNSELOR, DEPUTY, OPERATOR, AUDITOR):
        assert applications.review_many(db, who, ids, "approve") == {"done": 2, "refused": []}
    assert registers.list_quotas(db, OPERATOR, "GJZXJ", YEAR)[0]["used_places"] == 2
    assert applications.aided_register(db, OPERATOR, YEAR)["total"] == 2
