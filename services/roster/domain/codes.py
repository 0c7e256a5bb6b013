"""Code tables (字典): the standards as data, with the student affairs office's local edits on top.

The standard tables are `services/roster/data/code_tables.json`. Administrative divisions
(GB/T 2260) come from python-stdnum's county list (`stdnum/cn/loc.dat`, the data its ID
check uses), so one maintained source serves both; codes it lacks can be added as edits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import stdnum

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "code_tables.json"
DIVISIONS = "division"
_YEARS = re.compile(r"^\[[^\]]*\]")  # "[-2010]崇文区": the years a code was in use


@dataclass(frozen=True)
class CodeEdit:
    table: str
    code: str
    label: str
    active: bool = True


@dataclass
class CodeTable:
    name: str
    label: str
    standard: str
    codes: dict[str, str]  # code → label, in display order
    inactive: set[str] = field(default_factory=set)
    _by_label: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        self._by_label = {label: code for code, label in self.codes.items()}

    def resolve(self, value: str) -> str | None:
        """The code for a code or a label; None if it is neither (or was retired)."""
        code = value if value in self.codes else self._by_label.get(value)
        if code is None or code in self.inactive:
            return None
        return code

    def label_of(self, code: str | None) -> str:
        return self.codes.get(code or "", code or "")

    def choices(self) -> list[str]:
        return [label for code, label in self.codes.items() if code not in self.inactive]


class CodeBook:
    """Every code table, standards plus edits."""

    def __init__(self, tables: Mapping[str, CodeTable]) -> None:
        self.tables = dict(tables)

    def __getitem__(self, name: str) -> CodeTable:
        return self.tables[name]

    @classmethod
    def standard(cls, edits: Iterable[CodeEdit] = ()) -> CodeBook:
        tables = {
            name: CodeTable(name, spec["label"], spec["standard"], dict(spec["codes"]))
            for name, spec in _standard_tables().items()
        }
        tables[DIVISIONS] = CodeTable(DIVISIONS, "行政区划", "GB/T 2260（python-stdnum 数据）", dict(_divisions()))
        for edit in edits:
            table = tables.get(edit.table)
            if table is None:
                continue
            table.codes[edit.code] = edit.label
            if edit.active:
                table.inactive.discard(edit.code)
            else:
                table.inactive.add(edit.code)
        for table in tables.values():
            table.reindex()
        return cls(tables)

    def to_dict(self, include_divisions: bool = False) -> dict[str, dict]:
        return {
            name: {
                "label": t.label,
                "standard": t.standard,
                "codes": [{"code": c, "label": lbl, "active": c not in t.inactive} for c, lbl in t.codes.items()],
            }
            for name, t in self.tables.items()
            if include_divisions or name != DIVISIONS
        }


@cache
def _standard_tables() -> dict[str, dict]:
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


@cache
def _divisions() -> tuple[tuple[str, str], ...]:
    path = Path(stdnum.__file__).resolve().parent / "cn" / "loc.dat"
    result: dict[str, str] = {}
    province_code, province = "", ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        code, _, rest = line.strip().partition(" ")
        name = _YEARS.sub("", rest.split('"')[1]) if '"' in rest else ""
        if not line.startswith(" "):
            province_code, province = code, name
            continue
        full = province_code + code
        result[full] = province if name == province else province + name
    return tuple(result.items())


def valid_code(table: str, code: str, label: str) -> str | None:
    """Why an edit is refused, or None: codes are short digits/letters, labels non-empty."""
    if not re.fullmatch(r"[0-9A-Za-z]{1,16}", code or ""):
        return "代码应为1到16位字母或数字"
    if not (label or "").strip() or len(label) > 64:
        return "名称不能为空且不超过64个字"
    if table == DIVISIONS and not re.fullmatch(r"\d{6}", code):
        return "行政区划代码应为6位数字"
    return None
