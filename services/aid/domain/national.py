"""The national student-aid system's Excel templates (A4): layouts, their checks, diffs.

The layouts are the templates' own (column order and headers unchanged); each template's
checks run before anything is exported and are reported per cell (row, column, header).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.aid.domain.needy import FLAGS, Levels, parse_academic_year, valid_id_number
from services.common.errors import Invalid
from services.common.sheets import CellError, Column, column_letter

FAMILY = "family"
AIDED = "aided"

FAMILY_COLUMNS: tuple[Column, ...] = (
    Column("student_number", "学号", required=True, text=True),
    Column("name", "姓名", required=True),
    Column("id_number", "身份证件号", required=True, text=True, width=22),
    Column("college", "院系", required=True),
    Column("class_code", "班级", required=True, text=True),
    Column("academic_year", "认定学年", required=True, note="如 2026-2027"),
    Column("level", "认定级别", required=True),
    Column("identified_on", "认定时间", required=True, note="yyyy-mm-dd"),
    Column("reasons", "认定原因", required=True, width=40),
    Column("flags", "特殊困难类型", choices=FLAGS, width=16),
    Column("income_per_capita", "家庭人均年收入（元）"),
)

AIDED_COLUMNS: tuple[Column, ...] = (
    Column("student_number", "学号", required=True, text=True),
    Column("name", "姓名", required=True),
    Column("id_number", "身份证件号", required=True, text=True, width=22),
    Column("college", "院系", required=True),
    Column("academic_year", "资助学年", required=True),
    Column("programme", "资助项目", required=True, width=18),
    Column("amount", "资助金额（元）", required=True),
    Column("awarded_on", "发放日期", required=True, note="yyyy-mm-dd"),
    Column("payer", "资金来源", required=True),
    Column("level", "认定级别"),
)

TITLES = {FAMILY: "家庭经济困难学生认定信息", AIDED: "学生资助信息"}
COLUMNS = {FAMILY: FAMILY_COLUMNS, AIDED: AIDED_COLUMNS}
KEYS = {FAMILY: ("student_number", "academic_year"), AIDED: ("student_number", "academic_year", "programme")}


@dataclass(frozen=True)
class Template:
    kind: str
    title: str
    columns: Sequence[Column]


def template(kind: str) -> Template:
    if kind not in COLUMNS:
        raise Invalid(f"没有报表模板“{kind}”")
    return Template(kind, TITLES[kind], COLUMNS[kind])


def _check_year(value: Any) -> str | None:
    try:
        parse_academic_year(str(value))
    except Invalid as exc:
        return str(exc.args[0])
    return None


def _check_date(value: Any) -> str | None:
    if isinstance(value, date):
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
        return "日期格式应为 yyyy-mm-dd"
    try:
        date.fromisoformat(str(value))
    except ValueError:
        return "日期无效"
    return None


def _check_amount(value: Any) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return "金额必须是正整数（元）"
    return None


def checks(kind: str, levels: Levels) -> dict[str, Callable[[Any], str | None]]:
    """Per-column checks of a template (the required check applies to every required column)."""
    def level(value: Any) -> str | None:
        return None if value in levels.names else f"认定级别应为：{'、'.join(levels.names)}"

    def flags(value: Any) -> str | None:
        bad = [f for f in str(value).split("、") if f and f not in FLAGS]
        return f"特殊困难类型无效：{'、'.join(bad)}" if bad else None

    common: dict[str, Callable[[Any], str | None]] = {
        "id_number": lambda v: None if valid_id_number(str(v)) else "身份证件号应为18位且校验位正确",
        "academic_year": _check_year,
    }
    if kind == FAMILY:
        return {**common, "level": level, "identified_on": _check_date, "flags": flags}
    return {**common, "amount": _check_amount, "awarded_on": _check_date,
            "level": lambda v: None if v in (None, "") else level(v)}


def validate_rows(kind: str, rows: Sequence[dict[str, Any]], levels: Levels) -> list[CellError]:
    """Run the template's checks; row numbers are the export's Excel rows (header is row 1)."""
    columns = COLUMNS[kind]
    by_key = {c.key: c for c in columns}
    letters = {c.key: column_letter(columns, c.key) for c in columns}
    per_column = checks(kind, levels)
    errors = []
    seen: dict[tuple, int] = {}
    for excel_row, row in enumerate(rows, start=2):
        for column in columns:
            value = row.get(column.key)
            if value is None or value == "":
                if column.required:
                    errors.append(CellError(excel_row, letters[column.key], column.header, value,
                                            f"{column.header}不能为空"))
                continue
            check = per_column.get(column.key)
            message = check(value) if check else None
            if message:
                errors.append(CellError(excel_row, letters[column.key], column.header, value, message))
        key = tuple(row.get(k) for k in KEYS[kind])
        if key in seen:
            first = by_key["student_number"]
            errors.append(CellError(excel_row, letters[first.key], first.header, row.get(first.key),
                                    f"与第 {seen[key]} 行重复"))
        else:
            seen[key] = excel_row
    return errors


def row_key(kind: str, row: dict[str, Any]) -> str:
    return "|".join(str(row.get(k, "")) for k in KEYS[kind])


def normalised(row: dict[str, Any]) -> dict[str, Any]:
    """Rows as stored with a submission (JSON-able) and compared with the next export."""
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in row.items()}


@dataclass(frozen=True)
class Diff:
    added: list[str]
    removed: list[str]
    changed: list[dict[str, Any]]  # {"key", "fields": {field: [before, after]}}

    def to_dict(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed,
                "summary": f"新增 {len(self.added)} 条，删除 {len(self.removed)} 条，变更 {len(self.changed)} 条"}


def diff(kind: str, previous: Iterable[dict[str, Any]], current: Iterable[dict[str, Any]]) -> Diff:
    before = {row_key(kind, r): normalised(r) for r in previous}
    after = {row_key(kind, r): normalised(r) for r in current}
    changed = []
    for key in sorted(before.keys() & after.keys()):
        fields = {f: [before[key].get(f), after[key].get(f)]
                  for f in sorted(before[key].keys() | after[key].keys())
                  if before[key].get(f) != after[key].get(f)}
        if fields:
            changed.append({"key": key, "fields": fields})
    return Diff(sorted(after.keys() - before.keys()), sorted(before.keys() - after.keys()), changed)
