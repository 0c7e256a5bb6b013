"""困难认定导入 (identification_import.py) against a real, migrated database (SQLite and PostgreSQL), and the
programme rules the 资助项目 editor saves through `save_programme`."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from services.aid import handlers, identification_import, registers
from services.aid.domain.needy import Levels
from services.aid.domain.programmes import DEFAULT_PROGRAMMES, Programme, programme_problems
from services.aid.tests.factories import caller, id_number, status_changed
from services.aid.tests.flow import COUNSELOR, OPERATOR, YEAR, enrol, identify, number
from services.common.db import Database
from services.common.errors import Forbidden, Invalid
from services.common.models import AuditEntry

HEADER = ["学号", "姓名", "学年", "认定等级", "认定理由", "低保", "建档立卡", "孤残", "烈士子女", "证明材料",
          "身份证件号", "家庭人均年收入（元）"]
ELSEWHERE = "2025020101"


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    db = migrated_db("aid")
    enrol(db, number(1), number(2), number(3), number(1, ELSEWHERE))
    return db


def sheet(*rows: list[Any]) -> str:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return base64.b64encode(out.getvalue()).decode()


def good(n: str, level: str = "困难", **kw: Any) -> list[Any]:
    values = {"name": "李娜", "year": YEAR, "flags": ("", "", "", ""), "evidence": "低保证", "id": "", "income": 2400,
              **kw}
    return [n, values["name"], values["year"], level, "父亲重病", *values["flags"], values["evidence"], values["id"],
            values["income"]]


def needy_count(db: Database) -> int:
    return registers.needy_register(db, OPERATOR, YEAR)["total"]


def test_every_bad_cell_is_reported_at_its_row_and_column_and_nothing_is_saved(db: Database) -> None:
    content = sheet(
        good(number(1)),
        good(number(2), level="很困难"),                                  # row 3: D
        good(number(3), year="2026-2028", flags=("有", "", "", "")),       # row 4: C, F
        good(number(1, ELSEWHERE)),                                      # row 5: outside the counselor's classes
        good(number(4), evidence=""),                                    # row 6: unknown number, no evidence
        good(number(1), name="王五", id="110101200501011234", income="三千"),  # row 7: repeat, name, ID, income
    )
    result = identification_import.preview_identifications(db, COUNSELOR, content)
    assert not result["ok"] and result["saved"] == 0 and result["count"] == 6
    cells = {(e["row"], e["column"]) for e in result["errors"]}
    assert cells == {(3, "D"), (4, "C"), (4, "F"), (5, "A"), (6, "A"), (6, "J"), (2, "A"), (7, "A"), (7, "B"),
                     (7, "K"), (7, "L")}
    messages = {(e["row"], e["column"]): e["message"] for e in result["errors"]}
    assert "认定级别“很困难”无效" in messages[(3, "D")]
    assert messages[(4, "F")] == "低保应填“是”或“否”"
    assert "不在您的数据权限范围内" in messages[(5, "A")]
    assert "重复（第 7 行）" in messages[(2, "A")] and "李娜" in messages[(7, "B")]
    assert [r["row"] for r in result["rows"]] == []  # row 2 is a repeat of row 7: no row passes
    annotated = load_workbook(io.BytesIO(base64.b64decode(result["annotated"])))
    assert annotated.worksheets[0]["D3"].comment is not None and "错误说明" in annotated.sheetnames

    imported = identification_import.import_identifications(db, COUNSELOR, content)
    assert not imported["ok"] and imported["saved"] == 0 and imported["error_count"] == result["error_count"]
    assert needy_count(db) == 0


def test_a_good_sheet_is_previewed_then_saved_whole_and_audited(db: Database) -> None:
    identify(db, number(2), "一般困难")
    content = sheet(good(number(1), level="特别困难", flags=("", "是", "", "否"), id=id_number(7)),
                    good(number(2), level="困难"),
                    good(number(3), level="不困难", evidence="", income=""))
    preview = identification_import.preview_identifications(db, COUNSELOR, content)
    assert preview["ok"] and preview["saved"] == 0 and needy_count(db) == 1
    assert [(r["student_number"], r["level"], r["previous_level"]) for r in preview["rows"]] == [
        (number(1), "特别困难", None), (number(2), "困难", "一般困难"), (number(3), "不困难", None)]
    assert preview["rows"][0]["flags"] == ["建档立卡"] and "*" in preview["rows"][0]["id_number"]

    result = identification_import.import_identifications(db, COUNSELOR, content)
    assert result["ok"] and result["saved"] == 3 and result["annotated"] is None
    record = registers.needy_record(db, OPERATOR, number(1), YEAR, reveal=True)
    assert (record["level"], record["flags"], record["id_number"], record["income_per_capita"]) == \
        ("特别困难", ["建档立卡"], id_number(7), 2400)
    assert registers.needy_record(db, OPERATOR, number(2), YEAR)["level"] == "困难"
    with db.reading() as s:
        identified = list(s.scalars(select(AuditEntry.target).where(AuditEntry.action == "needy.identify")))
    assert identified.count(number(1)) == 1 and len(identified) == 4  # 1 single + 3 imported


def test_a_student_who_left_is_refused_at_his_row(db: Database) -> None:
    handlers.on_student_status_changed(db, status_changed(number(3), 5, "withdrawn", left=True))
    result = identification_import.import_identifications(db, COUNSELOR, sheet(good(number(1)), good(number(3))))
    assert [(e["row"], e["column"]) for e in result["errors"]] == [(3, "A")]
    assert "离校" in result["errors"][0]["message"] and needy_count(db) == 0


def test_who_may_import_and_what_the_file_must_be(db: Database) -> None:
    for role in ("student_affairs", "aid_auditor", "housing_centre"):
        with pytest.raises(Forbidden):
            identification_import.preview_identifications(db, caller(role), sheet(good(number(1))))
    with pytest.raises(Invalid, match="没有数据行"):
        identification_import.preview_identifications(db, OPERATOR, sheet())
    with pytest.raises(Invalid, match="有效的 Excel"):
        identification_import.preview_identifications(db, OPERATOR, base64.b64encode(b"not a workbook").decode())
    levels = identification_import.need_levels(caller("student", "self", number(1)))
    assert levels["needy"] == ["特别困难", "困难", "一般困难"] and levels["levels"][-1] == "不困难"
    with pytest.raises(Forbidden):
        identification_import.need_levels(caller("housing_centre"))
    # The aid centre covers every class.
    assert identification_import.import_identifications(db, OPERATOR, sheet(good(number(1, ELSEWHERE))))["saved"] == 1


def test_the_template_reads_back_as_its_own_layout() -> None:
    made = identification_import.identification_template(OPERATOR)
    data = base64.b64decode(made["content"])
    ws = load_workbook(io.BytesIO(data)).worksheets[0]
    assert [c.value for c in ws[1]] == HEADER
    checked = identification_import.read_sheet(data, Levels())
    assert not checked.errors and checked.rows[0].data["flags"] == ["建档立卡"]
    assert checked.rows[0].data["evidence"] == ["扶贫手册", "诊断证明"]


# ---- programme rules (资助项目 editor) ----------------------------------------------------------


def test_the_national_defaults_pass_the_programme_rules() -> None:
    assert all(programme_problems(p, Levels()) == [] for p in DEFAULT_PROGRAMMES)


def test_bad_programme_values_are_named() -> None:
    p = Programme("gj", "", "prize", amount=0, tiers={"困难": -1, "不困难": 100}, min_need_level="不困难",
                  min_year=0, max_rank_percent=120, instalments=13, payer=" ")
    problems = programme_problems(p, Levels())
    for words in ("项目代码", "项目名称", "项目类型", "固定金额须大于 0", "档次“不困难”", "各档次金额", "只能填一种",
                  "须要求家庭经济困难", "最低困难级别", "最低年级", "成绩排名", "发放期数", "资金来源"):
        assert any(words in m for m in problems), words


def test_save_programme_refuses_bad_values_and_saves_good_ones(db: Database) -> None:
    grant = next(p for p in registers.list_programmes(db, OPERATOR) if p["code"] == "GJZXJ")
    with pytest.raises(Invalid, match="各档次金额须大于 0 元"):
        registers.save_programme(db, OPERATOR, {**grant, "tiers": {"特别困难": 0, "困难": 3700}})
    with pytest.raises(Invalid, match="须为整数"):
        registers.save_programme(db, OPERATOR, {**grant, "min_year": "二"})
    with pytest.raises(Forbidden):
        registers.save_programme(db, caller("aid_auditor"), grant)
    tiers = {"特别困难": 4600, "困难": 3800, "一般困难": 3000}
    saved = registers.save_programme(db, OPERATOR, {**grant, "tiers": tiers})
    assert saved["tiers"]["特别困难"] == 4600
    assert next(p for p in registers.list_programmes(db, COUNSELOR) if p["code"] == "GJZXJ")["tiers"]["困难"] == 3800
