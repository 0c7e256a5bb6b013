"""Staff import from Excel (cell by cell, all-or-nothing) and the initial-password sheet."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from services.common.db import Database
from services.common.errors import Forbidden, Invalid
from services.common.models import AuditEntry
from services.identity import handlers, staff_import
from services.identity.adapters.orm import Account
from services.identity.tests.factories import caller, registered, staff

REGISTRAR = caller("1000001", "student_affairs")
COUNSELOR = caller("1000004", "counselor", "classes", "2023010101")
HEADERS = ["工号", "姓名", "角色", "数据范围", "初始密码"]


def workbook(*rows: list[Any], headers: list[str] = HEADERS) -> str:
    wb = Workbook()
    ws = wb.active
    ws.append(headers)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return base64.b64encode(out.getvalue()).decode()


def sheet_rows(data_b64: str) -> list[tuple[Any, ...]]:
    wb = load_workbook(io.BytesIO(base64.b64decode(data_b64)), read_only=True)
    return [tuple(r) for r in wb.worksheets[0].iter_rows(values_only=True)]


@pytest.fixture
def db(migrated_db: Any) -> Database:
    database = migrated_db("identity")
    staff(database, "1000001", name="学生处管理员")
    staff(database, "1000004", "counselor", "classes", ("2023010101",), name="王老师")
    return database


def accounts(db: Database) -> int:
    with db.reading() as s:
        return s.scalar(select(func.count()).select_from(Account)) or 0


def test_a_clean_file_creates_every_account_with_its_grant(db: Database) -> None:
    result = staff_import.import_staff(db, REGISTRAR, workbook(
        ["2001001", "陈老师", "辅导员", "2023010101，2023010102", "Chen-2027-pass"],
        ["2001002", "刘老师", "宿管中心", "", None],
    ))
    assert (result["ok"], result["created"]) == (True, 2)
    view = handlers.get_account(db, REGISTRAR, "2001001")
    assert (view["role"], view["scope"], view["must_change_password"]) == (
        "counselor", {"kind": "classes", "ids": ["2023010101", "2023010102"]}, True)
    generated = sheet_rows(result["passwords"])
    assert generated[0][:2] == ("账号", "姓名") and [r[0] for r in generated[1:]] == ["2001002"]
    assert handlers.login(db, "2001002", generated[1][3])["must_change_password"] is True
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "account.import")) == 2


def test_any_bad_cell_imports_nothing_and_names_row_and_column(db: Database) -> None:
    before = accounts(db)
    result = staff_import.import_staff(db, REGISTRAR, workbook(
        ["2001001", "陈老师", "辅导员", "2023010101", ""],   # fine
        ["200100", "", "校长", "", ""],                       # bad number, empty name, unknown role
        ["2001001", "周老师", "辅导员", "", "password"],       # duplicate, no scope, weak password
        ["1000004", "王老师", "宿管中心", "", ""],              # already has an account
    ))
    assert result["ok"] is False and accounts(db) == before
    cells = {(e["row"], e["column"]) for e in result["errors"]}
    assert {(3, "A"), (3, "B"), (3, "C"), (4, "A"), (4, "D"), (4, "E"), (5, "A")} <= cells
    assert (2, "A") not in cells
    annotated = load_workbook(io.BytesIO(base64.b64decode(result["annotated"])))
    assert "错误说明" in annotated.sheetnames


def test_only_student_affairs_imports_and_unreadable_files_are_refused(db: Database) -> None:
    with pytest.raises(Forbidden):
        staff_import.import_staff(db, COUNSELOR, workbook(["2001001", "陈老师", "宿管中心", "", ""]))
    with pytest.raises(Invalid):
        staff_import.import_staff(db, REGISTRAR, base64.b64encode(b"not a workbook").decode())
    with pytest.raises(Invalid, match="工号"):
        staff_import.import_staff(db, REGISTRAR, workbook(["x"], headers=["姓名"]))


def test_the_template_reads_back_as_the_import_columns(db: Database) -> None:
    rows = sheet_rows(staff_import.staff_template(REGISTRAR))
    assert list(rows[0]) == HEADERS


def test_the_counselor_downloads_initial_passwords_once(db: Database) -> None:
    handlers.on_student_registered(db, registered("202301010105", name="李娜"))
    sheet = staff_import.initial_password_sheet(db, COUNSELOR)
    rows = sheet_rows(sheet["sheet"])
    assert sheet["count"] == 1 and rows[1][:3] == ("202301010105", "李娜", "2023010101")
    assert handlers.login(db, "202301010105", rows[1][3])["must_change_password"] is True
    assert staff_import.initial_password_sheet(db, COUNSELOR)["count"] == 0
