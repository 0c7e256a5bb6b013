"""困难认定导入 (A1): a class or college panel's identifications from an Excel sheet, previewed, then saved
all or nothing through `registers.identify_many`.

Cells are read and checked outside any transaction (`read_sheet`: required cells, 学年, 认定等级, the
是/否 flag columns, income, ID check digit, evidence for needy levels, repeated student + year), then
the enrolled register is consulted in one `IN` query per `CHUNK` numbers (`check_register`: scope,
name, still enrolled). A sheet with any error saves nothing and comes back annotated (row and column
of each problem). Saving hands the rows to `identify_many`, which checks scope, rules and enrolment
again inside its own transaction and audits every row; a problem found only then (the student left
meanwhile) is reported at its row as well.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from services.aid import access, registers
from services.aid.adapters.orm import NeedyRecord, Student
from services.aid.domain import needy
from services.aid.domain import registers as enrolment
from services.common.caller import AID_OPERATOR, Caller
from services.common.db import Database
from services.common.errors import Invalid
from services.common.sheets import CellError, Column, annotate, column_letter, read_rows, template

IMPORT_ROLES = (AID_OPERATOR, *access.SCOPED_STAFF)
CHUNK = 1000
MAX_ROWS = 50000  # identify_many's own limit
MAX_LISTED_ERRORS = 500
MAX_LISTED_ROWS = 1000  # the page shows this many; the count says how many more
YES, NO = "是", "否"
FLAG_KEYS = {flag: f"flag_{i}" for i, flag in enumerate(needy.FLAGS)}
_SPLIT = re.compile(r"[,，、;；\n]+")


def columns(levels: needy.Levels | None = None) -> list[Column]:
    """The sheet's layout: the configured levels as the 认定等级 dropdown, one 是/否 column per flag."""
    names = (levels or needy.Levels()).names
    return [
        Column("student_number", "学号", required=True, text=True, width=16),
        Column("name", "姓名", required=True, note="须与在校生库中的姓名一致", width=12),
        Column("academic_year", "学年", required=True, note="如 2026-2027", width=12),
        Column("level", "认定等级", required=True, choices=names, width=12),
        Column("reasons", "认定理由", required=True, width=30),
        *(Column(key, flag, choices=(YES, NO), note=f"是否{flag}（留空为否）；有特殊困难类型的一般认定为{names[0]}",
                 width=10) for flag, key in FLAG_KEYS.items()),
        Column("evidence", "证明材料", note="材料名称或编号，多项用逗号或顿号分隔；认定为困难的必填", width=24),
        Column("id_number", "身份证件号", text=True, note="18 位居民身份证号，可留空", width=20),
        Column("income_per_capita", "家庭人均年收入（元）", note="整数，可留空", width=14),
    ]


HEADERS = {c.key: c.header for c in columns()}
LETTERS = {c.key: column_letter(columns(), c.key) for c in columns()}


@dataclass
class Row:
    excel_row: int
    name: str
    data: dict[str, Any]  # as identify_many takes it


@dataclass
class Checked:
    rows: list[Row] = field(default_factory=list)
    errors: list[CellError] = field(default_factory=list)
    bad_rows: set[int] = field(default_factory=set)

    def flag(self, row: int, key: str, value: Any, message: str) -> None:
        self.errors.append(CellError(row, LETTERS[key], HEADERS[key], value, message))
        self.bad_rows.add(row)


def read_sheet(data: bytes, levels: needy.Levels) -> Checked:
    """Every cell check that needs no database."""
    checked = Checked()
    seen: dict[tuple[str, str], int] = {}
    repeated: set[int] = set()
    for excel_row, raw in read_rows(data, columns(levels)):
        if len(checked.rows) >= MAX_ROWS:
            raise Invalid(f"一次最多导入 {MAX_ROWS} 行，请分批导入")
        for key in ("student_number", "name", "academic_year", "level", "reasons"):
            if not raw[key]:
                checked.flag(excel_row, key, "", f"{HEADERS[key]}不能为空")
        # Each cell by the rule the register applies to it; its message goes on the cell.
        for key, rule in (("student_number", access.check_number), ("academic_year", needy.parse_academic_year),
                          ("level", levels.rank)):
            if raw[key]:
                try:
                    rule(raw[key])
                except Invalid as exc:
                    checked.flag(excel_row, key, raw[key], str(exc.args[0]))
        number, year, level = raw["student_number"], raw["academic_year"], raw["level"]
        flags = []
        for flag, key in FLAG_KEYS.items():
            value = raw[key]
            if value == YES:
                flags.append(flag)
            elif value not in ("", NO):
                checked.flag(excel_row, key, value, f"{flag}应填“是”或“否”")
        evidence = needy.clean_list(_SPLIT.split(raw["evidence"]))
        if level and levels.is_needy(level) and not evidence:
            checked.flag(excel_row, "evidence", "", "认定为困难的须填写证明材料")
        id_number = raw["id_number"].upper()
        if id_number and not needy.valid_id_number(id_number):
            checked.flag(excel_row, "id_number", raw["id_number"], "身份证件号格式或校验位不正确")
        income = _income(raw["income_per_capita"])
        if raw["income_per_capita"] and income is None:
            checked.flag(excel_row, "income_per_capita", raw["income_per_capita"],
                         "家庭人均年收入应为不小于 0 的整数（元）")
        if number and year:
            first = seen.setdefault((number, year), excel_row)
            if first != excel_row:
                checked.flag(excel_row, "student_number", number, f"该学生本学年的认定在表中重复（第 {first} 行）")
                if first not in repeated:
                    repeated.add(first)
                    checked.flag(first, "student_number", number, f"该学生本学年的认定在表中重复（第 {excel_row} 行）")
        checked.rows.append(Row(excel_row, raw["name"], {
            "student_number": number, "academic_year": year, "level": level, "reasons": raw["reasons"],
            "evidence": list(evidence), "flags": flags, "id_number": id_number, "income_per_capita": income}))
    return checked


def check_register(checked: Checked, students: Mapping[str, Student], caller: Caller) -> list[Row]:
    """Scope, name and enrolment against the enrolled register (no queries); the rows that passed."""
    good = []
    for row in checked.rows:
        number = row.data["student_number"]
        student = students.get(number) if number else None
        in_scope = student is not None and (access.whole_register(caller) or caller.scope.covers_student(
            student.student_number, student.college_code, student.class_code))
        if number and not in_scope:
            message = f"在校生库中没有学号 {number}" if access.whole_register(caller) and student is None \
                else f"学生 {number} 不在您的数据权限范围内"
            checked.flag(row.excel_row, "student_number", number, message)
        elif student is not None:
            if row.name and row.name != student.name:
                checked.flag(row.excel_row, "name", row.name, f"姓名与在校生库不一致（库中为“{student.name}”）")
            refusal = enrolment.enrolment_refusal(student.status, student.left)
            if refusal:  # needy ⊆ enrolled (A1)
                checked.flag(row.excel_row, "student_number", number, refusal)
        if row.excel_row not in checked.bad_rows:
            good.append(row)
    return good


# ---- use cases -----------------------------------------------------------------------------------


def need_levels(caller: Caller) -> dict[str, list[str]]:
    """The configured levels (most in need first) and the needy ones among them, for the sheet and the forms."""
    caller.require_role(*access.AID_DATA)
    levels = access.levels()
    return {"levels": list(levels.names), "needy": [n for n in levels.names if levels.is_needy(n)]}


def identification_template(caller: Caller) -> dict[str, str]:
    caller.require_role(*IMPORT_ROLES)
    example = {"student_number": "202501010101", "name": "张三", "academic_year": "2026-2027",
               "level": access.levels().names[0], "reasons": "建档立卡家庭，父亲重病",
               FLAG_KEYS["建档立卡"]: YES, "evidence": "扶贫手册、诊断证明"}
    content = template(columns(access.levels()), "困难认定", example)
    return {"filename": "家庭经济困难认定导入模板.xlsx", "content": _b64(content)}


def preview_identifications(db: Database, caller: Caller, content: str) -> dict[str, Any]:
    """What the sheet would record, with every problem; saves nothing."""
    caller.require_role(*IMPORT_ROLES)
    data = _decode(content)
    checked = read_sheet(data, access.levels())
    _require_rows(checked)
    with db.reading() as s:
        students, existing = _load(s, checked.rows)
    good = check_register(checked, students, caller)
    return _result(data, checked, [_view(r, students, existing) for r in good], saved=0)


def import_identifications(db: Database, caller: Caller, content: str) -> dict[str, Any]:
    """Save the sheet: every row or, with any error, none (then the preview's answer)."""
    caller.require_role(*IMPORT_ROLES)
    data = _decode(content)
    checked = read_sheet(data, access.levels())
    _require_rows(checked)
    with db.reading() as s:
        students, existing = _load(s, checked.rows)
    good = check_register(checked, students, caller)
    if checked.errors:
        return _result(data, checked, [_view(r, students, existing) for r in good], saved=0)
    views = [_view(r, students, existing) for r in good]
    outcome = registers.identify_many(db, caller, [r.data for r in good])
    for e in outcome["errors"]:  # found only inside the transaction, e.g. the student left meanwhile
        row = good[e["index"]]
        checked.flag(row.excel_row, "student_number", row.data["student_number"], e["message"])
    if checked.errors:
        return _result(data, checked, [], saved=0)
    return _result(data, checked, views, saved=int(outcome["saved"]))


def _load(s: Any, rows: list[Row]) -> tuple[dict[str, Student], dict[tuple[str, str], str]]:
    numbers = sorted({r.data["student_number"] for r in rows if r.data["student_number"]})
    students: dict[str, Student] = {}
    existing: dict[tuple[str, str], str] = {}
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start:start + CHUNK]
        students.update((st.student_number, st) for st in s.scalars(
            select(Student).where(Student.student_number.in_(chunk))))
        existing.update(((n, y), level) for n, y, level in s.execute(
            select(NeedyRecord.student_number, NeedyRecord.academic_year, NeedyRecord.level)
            .where(NeedyRecord.student_number.in_(chunk))))
    return students, existing


def _view(row: Row, students: Mapping[str, Student], existing: Mapping[tuple[str, str], str]) -> dict[str, Any]:
    d = row.data
    student = students.get(d["student_number"])
    return {"row": row.excel_row, "student_number": d["student_number"], "name": row.name,
            "class_code": student.class_code if student else "", "academic_year": d["academic_year"],
            "level": d["level"], "previous_level": existing.get((d["student_number"], d["academic_year"])),
            "flags": d["flags"], "reasons": d["reasons"], "evidence": d["evidence"],
            "id_number": needy.mask_id(d["id_number"])}


def _income(text: str) -> int | None:
    return int(text) if re.fullmatch(r"\d{1,9}", text or "") else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decode(content: str) -> bytes:
    try:
        return base64.b64decode(content, validate=True)
    except (ValueError, TypeError):
        raise Invalid("上传内容不是有效的文件") from None


def _require_rows(checked: Checked) -> None:
    if not checked.rows:
        raise Invalid("文件中没有数据行")


def _result(data: bytes, checked: Checked, rows: list[dict[str, Any]], saved: int) -> dict[str, Any]:
    errors = sorted(checked.errors, key=lambda e: (e.row, len(e.column), e.column))
    return {
        "ok": not errors,
        "count": len(checked.rows),
        "saved": saved,
        "rows": rows[:MAX_LISTED_ROWS],
        "error_count": len(errors),
        "error_rows": len(checked.bad_rows),
        "errors": [{"row": e.row, "column": e.column, "header": e.header, "value": str(e.value or ""),
                    "message": e.message} for e in errors[:MAX_LISTED_ERRORS]],
        "annotated": _b64(annotate(data, columns(access.levels()), errors)) if errors else None,
    }
