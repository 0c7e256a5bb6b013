"""Code tables (字典) use cases: read by every staff form and template, edited by the student affairs office."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.common.audit import audit, verify_chain
from services.common.caller import STUDENT, STUDENT_AFFAIRS, Caller
from services.common.db import Database
from services.common.errors import Forbidden, Invalid
from services.roster.adapters.orm import CodeEntry
from services.roster.domain.codes import valid_code
from services.roster.importing import code_book


def code_tables(db: Database, caller: Caller, include_divisions: bool = False) -> dict[str, Any]:
    if caller.role == STUDENT and include_divisions:
        raise Forbidden("学生无权读取完整行政区划表")
    with db.reading() as s:
        return code_book(s).to_dict(include_divisions)


def save_code(db: Database, caller: Caller, table: str, code: str, label: str, active: bool = True) -> dict[str, Any]:
    """Add, rename or retire (active=False) a code; records keep retired codes, new entries may not use them."""
    caller.require_role(STUDENT_AFFAIRS)
    code, label = (code or "").strip(), (label or "").strip()
    with db.transaction() as s:
        book = code_book(s)
        if table not in book.tables:
            raise Invalid(f"代码表 {table} 不存在")
        problem = valid_code(table, code, label)
        if problem:
            raise Invalid(problem)
        current = book[table]
        before = ({"label": current.codes[code], "active": code not in current.inactive}
                  if code in current.codes else None)
        row = s.get(CodeEntry, (table, code))
        if row is None:
            row = CodeEntry(table_name=table, code=code)
            s.add(row)
        row.label, row.active = label, bool(active)
        row.updated_at, row.updated_by = datetime.now(UTC), caller.username
        audit(s, caller, "code.save", f"{table}:{code}", before, {"label": label, "active": bool(active)}, chain=True)
    return {"table": table, "code": code, "label": label, "active": bool(active)}


def verify_audit(db: Database, caller: Caller) -> dict[str, Any]:
    caller.require_role(STUDENT_AFFAIRS)
    with db.reading() as s:
        return verify_chain(s).to_dict()
