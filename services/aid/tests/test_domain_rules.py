"""Aid's plain rules: identification, each programme's eligibility, quotas, review chain, instalments,
consistency and the national templates' checks."""

from __future__ import annotations

from datetime import date

import pytest

from services.aid.domain import consistency, instalments, national, needy, quotas, review
from services.aid.domain.programmes import (
    DEFAULT_PROGRAMMES,
    Applicant,
    Programme,
    amount_for,
    refusals,
    work_study_refusals,
)
from services.aid.tests.factories import id_number
from services.common.errors import Conflict, Forbidden, Invalid

LEVELS = needy.Levels()
P = {p.code: p for p in DEFAULT_PROGRAMMES}


def applicant(year: int | None = 2, level: str | None = "困难", rank: int | None = 5, **kw) -> Applicant:
    return Applicant(enrolled=kw.pop("enrolled", True), year_of_study=year, need_level=level, rank_percent=rank, **kw)


# ---- identification ---------------------------------------------------------------------------


def test_levels_rank_needy_and_configurable() -> None:
    assert LEVELS.is_needy("一般困难") and not LEVELS.is_needy("不困难") and not LEVELS.is_needy(None)
    assert LEVELS.at_least("特别困难", "困难") and not LEVELS.at_least("一般困难", "困难")
    custom = needy.Levels(("困难", "一般困难", "不困难"))
    assert custom.is_needy("困难") and not custom.is_needy("特别困难")
    with pytest.raises(Invalid, match="认定级别"):
        custom.rank("特别困难")


def test_academic_year_and_year_of_study() -> None:
    assert needy.parse_academic_year("2026-2027") == 2026
    for bad in ("2026-2028", "2026", "26-27"):
        with pytest.raises(Invalid):
            needy.parse_academic_year(bad)
    assert needy.academic_year_of(date(2026, 9, 1)) == "2026-2027"
    assert needy.academic_year_of(date(2027, 8, 31)) == "2026-2027"
    assert needy.year_of_study("2025010101", "202501010101", "2026-2027") == 2
    assert needy.year_of_study("2026010101", "x", "2026-2027") == 1
    assert needy.year_of_study("CS-A", "ABC123", "2026-2027") is None


def test_an_identification_is_validated() -> None:
    good = needy.Assessment("202501010101", "2026-2027", "困难", "父亲重病", evidence=("证明材料.pdf",),
                            flags=("低保",), id_number=id_number(1), income_per_capita=3000)
    assert needy.validate(good, LEVELS) == []
    bad = needy.Assessment("202501010101", "2026", "很困难", " ", flags=("残疾",), id_number="110101200501010011",
                           income_per_capita=-1)
    problems = "；".join(needy.validate(bad, LEVELS))
    for expected in ("学年", "认定级别", "认定原因", "特殊困难类型", "负数", "身份证件号"):
        assert expected in problems
    assert needy.validate(needy.Assessment("202501010101", "2026-2027", "困难", "重病"), LEVELS) == \
        ["困难认定须附证明材料"]
    # "not needy" needs no evidence
    assert needy.validate(needy.Assessment("202501010101", "2026-2027", "不困难", "收入正常"), LEVELS) == []
    assert needy.suggested_level(("建档立卡",), LEVELS) == "特别困难"
    assert needy.suggested_level((), LEVELS) is None


def test_masking() -> None:
    assert needy.mask_id("110101200501010015") == "1101**********0015"
    assert needy.mask_id("") == "" and needy.mask_income(5000) == "****" and needy.mask_income(None) == ""


# ---- each programme's eligibility -----------------------------------------------------------------


def test_national_scholarship_year_two_and_top_results() -> None:
    p = P["GJJXJ"]
    assert refusals(p, applicant(level=None, rank=10), LEVELS) == []  # need not required
    assert "二年级" in refusals(p, applicant(year=1), LEVELS)[0]
    assert "前 10%" in refusals(p, applicant(rank=11), LEVELS)[0]
    assert "排名" in refusals(p, applicant(rank=None), LEVELS)[0]
    assert amount_for(p, None, None) == 10000


def test_national_encouragement_scholarship_needs_need_and_results() -> None:
    p = P["GJLZJXJ"]
    assert refusals(p, applicant(level="一般困难", rank=30), LEVELS) == []
    assert any("家庭经济困难" in r for r in refusals(p, applicant(level="不困难"), LEVELS))
    assert any("前 30%" in r for r in refusals(p, applicant(rank=31), LEVELS))
    assert any("二年级" in r for r in refusals(p, applicant(year=1), LEVELS))
    assert amount_for(p, "困难", None) == 6000


def test_national_grant_tiers_by_level_any_year() -> None:
    p = P["GJZXJ"]
    assert refusals(p, applicant(year=1, rank=None, level="一般困难"), LEVELS) == []
    assert refusals(p, applicant(level=None), LEVELS)
    assert [amount_for(p, lv, None) for lv in ("特别困难", "困难", "一般困难")] == [4400, 3700, 3000]
    assert sum(p.tiers.values()) / 3 == pytest.approx(3700)


def test_student_loan_ceilings() -> None:
    p = P["ZXDK"]
    assert refusals(p, applicant(year=1, rank=None), LEVELS, 20000) == []
    assert "20000" in refusals(p, applicant(year=1, rank=None), LEVELS, 20001)[0]
    assert refusals(p, applicant(year=1, rank=None, postgraduate=True), LEVELS, 25000) == []
    assert refusals(p, applicant(year=1, rank=None, postgraduate=True), LEVELS, 25001)
    assert refusals(p, applicant(year=1, rank=None), LEVELS, 0)


def test_work_study_limits() -> None:
    assert work_study_refusals(8, 40, 12, temporary=True) == []
    found = work_study_refusals(9, 41, 11.5, temporary=True)
    assert len(found) == 3
    assert work_study_refusals(8, 40, 10, temporary=False) == []


def test_waiver_emergency_and_green_channel() -> None:
    assert any("困难”及以上" in r for r in refusals(P["XFJM"], applicant(level="一般困难"), LEVELS))
    assert refusals(P["XFJM"], applicant(level="困难"), LEVELS) == []
    assert refusals(P["LSKNBZ"], applicant(year=1, level=None, rank=None), LEVELS, 3000) == []
    assert refusals(P["LSKNBZ"], applicant(year=1, level=None, rank=None), LEVELS, 3001)
    assert refusals(P["LSTD"], applicant(year=1, level=None, rank=None), LEVELS) == []


def test_leavers_and_inactive_programmes_are_refused() -> None:
    found = refusals(P["LSTD"], applicant(enrolled=False, stop_instalments=True), LEVELS)
    assert len(found) == 2
    closed = Programme.from_dict({**P["LSTD"].to_dict(), "active": False})
    assert "未开放" in refusals(closed, applicant(), LEVELS)[0]


# ---- quotas -----------------------------------------------------------------------------------


def test_allocation_fits_the_parent_and_what_is_used() -> None:
    parent = quotas.Quota(quotas.COLLEGE, "01", places=10, funds=37000)
    assert quotas.allocation_problems(quotas.CLASS, 4, 14800, parent, 6, 22200, None) == []
    assert "可分配 4 个" in quotas.allocation_problems(quotas.CLASS, 5, None, parent, 6, 0, None)[0]
    assert "可分配 14800 元" in quotas.allocation_problems(quotas.CLASS, 4, 14801, parent, 6, 22200, None)[0]
    assert "请先分配" in quotas.allocation_problems(quotas.CLASS, 1, None, None, 0, 0, None)[0]
    used = quotas.Quota(quotas.PROGRAMME, "", 5, None, used_places=3)
    assert "不能减少" in quotas.allocation_problems(quotas.PROGRAMME, 2, None, None, 0, 0, used)[0]
    assert quotas.has_room(quotas.Quota(quotas.CLASS, "c", 1, 4400), 4400)
    assert not quotas.has_room(quotas.Quota(quotas.CLASS, "c", 1, 4400, used_places=1), 0)
    assert not quotas.has_room(quotas.Quota(quotas.CLASS, "c", 2, 4400), 4401)


# ---- review chain ----------------------------------------------------------------------------


def test_review_chain_in_order_and_returns() -> None:
    status, seen = review.APPLIED, set()
    for role, who in (("counselor", "c1"), ("deputy_secretary", "d1"), ("aid_operator", "o1"),
                      ("aid_auditor", "a1")):
        status = review.decide(status, role, review.APPROVE, "", who, seen)
        seen.add(who)
    assert status == review.AUDITED
    with pytest.raises(Conflict):
        review.decide(review.AUDITED, "aid_operator", review.APPROVE, "", "o2", set())
    with pytest.raises(Forbidden, match="辅导员"):
        review.decide(review.APPLIED, "aid_auditor", review.APPROVE, "", "a1", set())
    with pytest.raises(Conflict, match="原因"):
        review.decide(review.COLLEGE_PASSED, "aid_operator", review.RETURN, " ", "o1", set())
    assert review.decide(review.COLLEGE_PASSED, "aid_operator", review.RETURN, "材料不全", "o1", set()) == \
        review.RETURNED
    with pytest.raises(Forbidden, match="同一人"):
        review.decide(review.OPERATOR_PASSED, "aid_auditor", review.APPROVE, "", "o1", {"o1"})


# ---- instalments ------------------------------------------------------------------------------


def test_instalment_plan_and_leavers_stop() -> None:
    plan = instalments.plan(4400, 10, date(2026, 10, 31))
    assert [p.amount for p in plan] == [440] * 10 and sum(p.amount for p in plan) == 4400
    assert plan[0].due_on == date(2026, 10, 28) and plan[3].due_on == date(2027, 1, 28)
    assert sum(p.amount for p in instalments.plan(1000, 3, date(2026, 9, 1))) == 1000
    today = date(2027, 1, 1)
    assert instalments.decide(instalments.DUE, date(2026, 12, 1), today, False) == instalments.PAID
    assert instalments.decide(instalments.DUE, date(2026, 12, 1), today, True) == instalments.STOPPED
    assert instalments.decide(instalments.DUE, date(2027, 2, 1), today, True) == instalments.DUE
    assert instalments.decide(instalments.PAID, date(2026, 12, 1), today, True) == instalments.PAID


# ---- consistency ------------------------------------------------------------------------------


def test_consistency_lists_every_kind_of_violation() -> None:
    enrolled = {"A": consistency.EnrolledFact(True, False), "B": consistency.EnrolledFact(False, True)}
    awards = [consistency.AwardFact("A", "GJZXJ", "国家助学金", True),
              consistency.AwardFact("C", "GJJXJ", "国家奖学金", False),
              consistency.AwardFact("B", "GJZXJ", "国家助学金", True, paid_after_stop=2)]
    found = consistency.check({"A": "不困难", "B": "困难", "D": "困难"}, enrolled, awards, LEVELS)
    assert sorted((v.rule, v.student_number) for v in found) == [
        ("aided_not_enrolled", "C"), ("aided_not_needy", "A"), ("needy_left", "B"),
        ("needy_not_enrolled", "D"), ("paid_after_leaving", "B")]
    assert consistency.check({"A": "困难"}, enrolled, [awards[0]], LEVELS) == []


# ---- national templates -----------------------------------------------------------------------


def family_row(n: int, **kw) -> dict:
    row = {"student_number": f"2025010101{n:02d}", "name": "李娜", "id_number": id_number(n), "college": "01",
           "class_code": "2025010101", "academic_year": "2026-2027", "level": "困难",
           "identified_on": date(2026, 10, 1), "reasons": "家庭收入低", "flags": "低保", "income_per_capita": 3000}
    row.update(kw)
    return row


def test_template_checks_report_each_cell() -> None:
    rows = [family_row(1), family_row(2, id_number="110101200501010011", level="很困难", reasons=""),
            family_row(3, academic_year="2026", flags="残疾"), family_row(1)]
    errors = national.validate_rows(national.FAMILY, rows, LEVELS)
    found = sorted((e.row, e.column, e.header) for e in errors)
    assert found == [(3, "C", "身份证件号"), (3, "G", "认定级别"), (3, "I", "认定原因"),
                     (4, "F", "认定学年"), (4, "J", "特殊困难类型"), (5, "A", "学号")]
    assert "重复" in [e for e in errors if e.row == 5][0].message
    aided = {"student_number": "202501010101", "name": "李娜", "id_number": id_number(1), "college": "01",
             "academic_year": "2026-2027", "programme": "国家助学金", "amount": 0, "awarded_on": "2026-13-01",
             "payer": "中央财政", "level": ""}
    bad = national.validate_rows(national.AIDED, [aided], LEVELS)
    assert sorted(e.header for e in bad) == ["发放日期", "资助金额（元）"]


def test_diff_against_the_last_submission() -> None:
    before = [family_row(1), family_row(2)]
    after = [family_row(1, level="特别困难"), family_row(3)]
    d = national.diff(national.FAMILY, before, after)
    assert d.added == ["202501010103|2026-2027"] and d.removed == ["202501010102|2026-2027"]
    assert d.changed == [{"key": "202501010101|2026-2027", "fields": {"level": ["困难", "特别困难"]}}]
    assert "新增 1 条" in d.to_dict()["summary"]
    assert national.diff(national.FAMILY, before, before).changed == []
