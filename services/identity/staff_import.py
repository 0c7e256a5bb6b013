"""Staff accounts from Excel (checked cell by cell, all-or-nothing) and the initial-password
distribution sheet for counselors. Workbooks travel over RPC as base64."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sqlalchemy import select

from services.common.audit import audit
from services.common.caller import ROLE_LABELS, Caller
from services.common.db import Database
from services.common.errors import Forbidden, Invalid
from services.common.sheets import CellError, Column, SheetError, annotate, column_letter, export, read_rows, template
from services.identity import admin
from services.identity import handlers as h
from services.identity.adapters.orm import Account
from services.identity.domain import accounts as rules
from services.identity.domain import grants as grant_rules
from services.identity.domain.passwords import hash_password, policy_problems, temporary_password

MAX_ROWS = 2000
ROLE_BY_LABEL = {ROLE_LABELS[r]: r for r in sorted(grant_rules.GRANTABLE_ROLES - grant_rules.SYSTEM_ONLY_ROLES)}
COLUMNS = (
    Column("username", "工号", required=True, text=True, note="人事处发放的7位工号"),
    Column("display_name", "姓名", required=True),
    Column("role", "角色", required=True, choices=tuple(ROLE_BY_LABEL), width=16),
    Column("scope_ids", "数据范围", text=True, width=30,
           note="辅导员：班级代码；党总支副书记：学院代码；多个用逗号分隔。全校角色留空"),
    Column("password", "初始密码", text=True, width=18, note="留空则自动生成，导入后下载初始密码表"),
)
PASSWORD_COLUMNS = (
    Column("username", "账号", text=True),
    Column("display_name", "姓名"),
    Column("class_code", "班级", text=True),
    Column("password", "初始密码", text=True, width=18, note="首次登录后须立即修改"),
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def staff_template(caller: Caller) -> str:
    caller.require_role(rules.STUDENT_AFFAIRS)
    return _b64(template(COLUMNS, "教职工账号", {"username": "2001001", "display_name": "王老师",
                                                 "role": "辅导员", "scope_ids": "2023010101,2023010102"}))


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.replace("，", ",").replace("、", ",").split(",") if p.strip())


def _check_row(caller: Caller, row: int, r: dict[str, str], seen: dict[str, int]) -> tuple[list[CellError], Any]:
    errors: list[CellError] = []

    def bad(key: str, message: str) -> None:
        header = next(c.header for c in COLUMNS if c.key == key)
        errors.append(CellError(row, column_letter(COLUMNS, key), header, r[key], message))

    username = r["username"]
    if not rules.STAFF_NUMBER.fullmatch(username):
        bad("username", "工号须为7位数字")
    elif username in seen:
        bad("username", f"与第{seen[username]}行工号重复")
    else:
        seen[username] = row
    name = r["display_name"]
    if not name:
        bad("display_name", "姓名不能为空")
    elif len(name) > rules.MAX_DISPLAY_NAME:
        bad("display_name", f"姓名不能超过{rules.MAX_DISPLAY_NAME}个字符")
    role = ROLE_BY_LABEL.get(r["role"])
    grant = None
    if role is None:
        bad("role", f"角色应为：{'、'.join(ROLE_BY_LABEL)}")
    else:
        grant = grant_rules.Grant(role, grant_rules.SCOPE_KIND_OF_ROLE[role], _split(r["scope_ids"]))
        problems = grant_rules.grant_problems(grant)
        refusal = grant_rules.may_grant(h._viewer(caller), username, grant)
        for message in problems or ([refusal] if refusal else []):
            bad("scope_ids", message)
    if r["password"]:
        for message in policy_problems(r["password"], username):
            bad("password", message)
    return errors, grant


def import_staff(db: Database, caller: Caller, data_b64: Any) -> dict[str, Any]:
    """Every cell checked first; a file with any error creates nothing and comes back
    annotated. Otherwise every account is created in one transaction, each with its grant,
    must change its password at first login, and generated passwords come back as a sheet."""
    if not rules.administers_accounts(h._viewer(caller)):
        raise Forbidden("只有学生处可以导入教职工账号")
    try:
        data = base64.b64decode(data_b64 if isinstance(data_b64, str) else "", validate=True)
    except (binascii.Error, ValueError):
        raise Invalid("上传的文件无法读取") from None
    rows = []
    for excel_row, record in read_rows(data, COLUMNS):
        rows.append((excel_row, record))
        if len(rows) > MAX_ROWS:
            raise SheetError(f"一次最多导入{MAX_ROWS}行")
    if not rows:
        raise SheetError("文件中没有数据行")
    errors: list[CellError] = []
    checked = []
    seen: dict[str, int] = {}
    for excel_row, record in rows:
        row_errors, grant = _check_row(caller, excel_row, record, seen)
        errors += row_errors
        checked.append((excel_row, record, grant))
    with db.reading() as s:
        existing = set(s.scalars(select(Account.username).where(Account.username.in_(list(seen)))))
    for excel_row, record, _ in checked:
        if record["username"] in existing:
            errors.append(CellError(excel_row, column_letter(COLUMNS, "username"), "工号", record["username"],
                                    "该工号已有账号"))
    if errors:
        errors.sort(key=lambda e: (e.row, e.column))
        return {"ok": False, "created": 0, "errors": [e.__dict__ for e in errors],
                "annotated": _b64(annotate(data, COLUMNS, errors))}
    passwords = {r["username"]: r["password"] or temporary_password() for _, r, _ in checked}
    hashes = {u: h._off_hub(hash_password, p) for u, p in passwords.items()}
    now = h._now()
    generated = []
    with db.transaction() as s:
        for _, record, grant in checked:
            username = record["username"]
            account = Account(username=username, display_name=record["display_name"], role=grant.role, active=True,
                              must_change_password=True, failed_logins=0, created_at=now, updated_at=now)
            s.add(account)
            s.flush()
            h.store_password(s, account, hashes[username], now)
            made = h.add_grant(s, caller, username, grant, now)
            audit(s, caller, "account.import", username, None, {**account.snapshot(), "grants": [made.view()]})
            if not record["password"]:
                generated.append({"username": username, "display_name": record["display_name"],
                                  "password": passwords[username]})
    result: dict[str, Any] = {"ok": True, "created": len(checked), "errors": []}
    if generated:
        result["passwords"] = _b64(export(PASSWORD_COLUMNS, generated, "初始密码"))
    return result


def initial_password_sheet(db: Database, caller: Caller, class_code: Any = None) -> dict[str, Any]:
    """The counselor's distribution sheet: initial passwords of their students without one."""
    issued = admin.issue_initial_passwords(db, caller, class_code)
    rows = [{"username": i["student_number"], "display_name": i["name"], "class_code": i["class_code"],
             "password": i["initial_password"]} for i in issued["items"]]
    return {"count": issued["count"], "sheet": _b64(export(PASSWORD_COLUMNS, rows, "学生初始密码"))}
