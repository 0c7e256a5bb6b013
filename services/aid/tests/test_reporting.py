"""National reporting (A4) against a real database: template checks per cell before export, the workbook
in the template layout, submission and the diff against it; every export audited (A5)."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from services.aid import applications, registers, reporting
from services.aid.adapters.orm import NeedyRecord
from services.aid.domain import national
from services.aid.tests.flow import COUNSELOR, OPERATOR, YEAR, allocate, apply, approve_through, enrol, identify, number
from services.common.db import Database
from services.common.errors import Conflict, Forbidden
from services.common.models import AuditEntry


@pytest.fixture
def db(migrated_db: Callable[[str], Database]) -> Database:
    return migrated_db("aid")


def headers(data: str) -> list[list[object]]:
    wb = load_workbook(io.BytesIO(base64.b64decode(data)), read_only=True)
    return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]


def test_family_export_checks_each_cell_first_then_diffs_against_the_submission(db: Database) -> None:
    a, b = number(1), number(2)
    enrol(db, a, b)
    identify(db, a, "特别困难", serial=1)
    identify(db, b, "困难", serial=2)
    with db.transaction() as s:  # an ID number entered before checks existed
        s.execute(update(NeedyRecord).where(NeedyRecord.student_number == b).values(id_number="11010120050101001X"))
    bad = reporting.national_export(db, OPERATOR, national.FAMILY, YEAR)
    assert bad["ok"] is False and bad["file"] is None
    assert [(e["row"], e["column"], e["header"]) for e in bad["errors"]] == [(3, "C", "身份证件号")]
    with pytest.raises(Conflict, match="1 处"):
        reporting.submit_national(db, OPERATOR, national.FAMILY, YEAR)

    identify(db, b, "困难", serial=2)  # corrected
    good = reporting.national_export(db, OPERATOR, national.FAMILY, YEAR)
    assert good["ok"] and good["diff"]["added"] == [f"{a}|{YEAR}", f"{b}|{YEAR}"]
    rows = headers(good["file"])
    assert rows[0] == [c.header for c in national.FAMILY_COLUMNS]
    assert rows[1][0] == a and rows[1][6] == "特别困难" and len(rows[1][2]) == 18  # full ID in the national file
    reporting.submit_national(db, OPERATOR, national.FAMILY, YEAR)

    identify(db, a, "困难", serial=1)
    after = reporting.national_export(db, OPERATOR, national.FAMILY, YEAR)
    assert after["diff"]["added"] == [] and after["diff"]["removed"] == []
    assert [c["fields"].get("level") for c in after["diff"]["changed"]] == [["特别困难", "困难"]]
    assert after["last_submission"]["rows"] == 2
    with db.reading() as s:
        exports = s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("national.%"))).all()
    assert exports == ["national.export", "national.export", "national.submit", "national.export"]


def test_aided_export_and_submission_close_the_chain(db: Database) -> None:
    a = number(1)
    enrol(db, a)
    identify(db, a, "困难")
    allocate(db, "GJZXJ", 1)
    app = apply(db, a)
    approve_through(db, app["id"])
    result = reporting.national_export(db, OPERATOR, national.AIDED, YEAR)
    assert result["ok"], result["errors"]
    rows = headers(result["file"])
    assert rows[0] == [c.header for c in national.AIDED_COLUMNS]
    assert rows[1][5:8] == ["国家助学金", 3700, rows[1][7]] and rows[1][9] == "困难"
    done = reporting.submit_national(db, OPERATOR, national.AIDED, YEAR)
    assert done["applications_submitted"] == 1
    assert applications.get_application(db, OPERATOR, app["id"])["status"] == "submitted"
    summary = reporting.summary(db, OPERATOR, YEAR)
    assert summary["by_programme"] == [{"programme_code": "GJZXJ", "programme_name": "国家助学金", "count": 1,
                                        "amount": 3700}]
    assert summary["by_level"] == [{"level": "困难", "count": 1}]
    with pytest.raises(Forbidden):
        reporting.national_export(db, COUNSELOR, national.AIDED, YEAR)
    with pytest.raises(Forbidden):
        registers.consistency_check(db, COUNSELOR, YEAR)
