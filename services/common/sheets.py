"""Spreadsheet import/export shared by every importer (R1, H2, A4).

One layout for the template, the export and the annotated workbook returned after a
failed check, so an exported file can be edited and imported again. Everything streams
(openpyxl read-only / write-only): a 50,000-row roster import must not hold the workbook
in memory.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from operator import itemgetter
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.datavalidation import DataValidation
from python_calamine import CalamineError, CalamineWorkbook

from services.common.errors import Invalid

ERROR_SHEET = "错误说明"
CHOICES_SHEET = "字典"
_MAX_ROW = 1048576
_DANGEROUS = "=+-@\t\r"
# A value is escaped when it starts with a dangerous character after any run of quotes, so that
# reading strips exactly one quote and a value that itself began with a quote survives the round trip.
_ESCAPED = re.compile(r"^'+[=+\-@\t\r]")
_NEEDS_ESCAPE = re.compile(r"^'*[=+\-@\t\r]")

_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_ERROR_FILL = PatternFill("solid", fgColor="FFC7CE")
_HEADER_FONT = Font(bold=True)
_REQUIRED_FONT = Font(bold=True, color="C00000")
_CENTER = Alignment(horizontal="center", vertical="center")


@dataclass(frozen=True)
class Column:
    key: str  # field name, e.g. "student_number"
    header: str  # Chinese header, e.g. "学号"
    required: bool = False
    note: str = ""  # shown as the header cell's comment in the template
    choices: Sequence[str] = ()  # labels for a dropdown (DataValidation) in the template
    text: bool = False  # text-formatted column (ID numbers, student numbers: keep leading zeros)
    width: int = 14


@dataclass(frozen=True)
class CellError:
    row: int  # 1-based Excel row number as the operator sees it
    column: str  # Excel column letter, e.g. "C" ("" for an error about the whole row)
    header: str  # the column's Chinese header
    value: Any
    message: str  # Chinese


class SheetError(Invalid):
    """The file cannot be read as the expected sheet at all (not a per-cell error)."""


def column_letter(columns: Sequence[Column], key: str) -> str:
    """The column's letter in the template/export layout (annotate() follows moved columns by header)."""
    for index, column in enumerate(columns, start=1):
        if column.key == key:
            return get_column_letter(index)
    raise ValueError(f"no column {key!r}")


def safe_cell(value: Any) -> Any:
    """Formula-injection escaping: a string starting with = + - @ TAB CR gets a leading quote."""
    if isinstance(value, str) and _NEEDS_ESCAPE.match(value):
        return "'" + value
    return value


def template(columns: Sequence[Column], title: str, example: dict | None = None) -> bytes:
    """An empty import template: notes as header comments, dropdowns, text columns, frozen header."""
    wb = Workbook(write_only=True)
    ws = _data_sheet(wb, title, columns, [(c.header, c) for c in columns])
    if example:
        ws.append([_value_cell(ws, c, example.get(c.key)) for c in columns])
    _choices_sheet(wb, ws, [(get_column_letter(i), c) for i, c in enumerate(columns, start=1)])
    return _save(wb)


def export(columns: Sequence[Column], rows: Iterable[dict[str, Any]], title: str) -> bytes:
    """The rows in the template's layout (so the file can be imported again), formula-safe."""
    wb = Workbook(write_only=True)
    ws = _data_sheet(wb, title, columns, [(c.header, c) for c in columns])
    for row in rows:
        ws.append([_value_cell(ws, c, row.get(c.key)) for c in columns])
    _choices_sheet(wb, ws, [(get_column_letter(i), c) for i, c in enumerate(columns, start=1)])
    return _save(wb)


def read_rows(data: bytes, columns: Sequence[Column]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (excel_row, {key: value}) for each non-blank data row of the first sheet.

    Headers are matched by name, in any order; unknown columns are ignored and absent
    optional columns read as "". Values are strings: dates as yyyy-mm-dd, whole numbers
    without ".0", stripped, and the quote export() put before a formula-like value removed.

    Parsed with python-calamine: ~15× faster than openpyxl read-only on the same 70-column
    file (tests/perf/test_roster_import_bench.py), which is what lets a 50,000-row import stay
    within a few times the raw parse; rows are converted to Python one at a time.
    """
    return Sheet(data, columns).rows()


class Sheet:
    """The first sheet of a workbook, parsed (SheetError if it cannot be read as one), its header
    matched; `rows()` as `read_rows` yields them.
    Rows are converted to Python only as they are read, and a part of them can be read alone
    (`rows(start, stop)`: the roster import reads the two halves in two processes)."""

    def __init__(self, data: bytes, columns: Sequence[Column]) -> None:
        try:
            self._sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0)
        except (CalamineError, ValueError, IndexError):
            raise SheetError("文件不是有效的 Excel 工作簿（.xlsx），请使用下载的模板") from None
        header_row = 0  # iter_rows() yields from row 1 (leading blank rows included), so rows count as in Excel
        for header in self._sheet.iter_rows():  # the header is the first non-blank row
            header_row += 1
            if any(_text(v) for v in header):
                break
        else:
            raise SheetError("工作表为空：第1行应为列名")
        self.header_row = header_row
        self._positions = _match_headers(header, columns)
        self._columns = columns

    def __len__(self) -> int:
        """Rows below the header, blank ones included: what `rows(start, stop)` counts in."""
        return max(0, self._sheet.height - self.header_row)

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, dict[str, str]]]:
        """The non-blank rows among the `start`-th to the `stop`-th row below the header."""
        keys = list(self._positions)
        take = _taker(list(self._positions.values()))
        width = max(self._positions.values(), default=-1) + 1
        # All columns present (the usual case): the record is built straight in column order.
        empty = None if len(keys) == len(self._columns) else {c.key: "" for c in self._columns}
        rows = self._sheet.iter_rows()
        first = self.header_row + start
        for _ in range(first):
            if next(rows, None) is None:
                return
        for excel_row, values in enumerate(rows, start=first + 1):
            if stop is not None and excel_row > self.header_row + stop:
                return
            if len(values) < width:  # a short row: the missing cells read as blank, as absent columns do
                values = [*values, *([""] * (width - len(values)))]
            # Most cells are strings: strip them inline and leave other types to _text().
            cells = take(values)
            texts = [v.strip() if type(v) is str else _text(v) for v in cells]
            if not any(texts):
                continue
            if "'" in "".join(texts):  # only a row with a quote somewhere can hold an escaped value
                texts = [_text(v) for v in cells]
            if empty is None:
                yield excel_row, dict(zip(keys, texts, strict=False))  # same length by construction
            else:
                record = dict(empty)
                record.update(zip(keys, texts, strict=False))
                yield excel_row, record


def _taker(indices: list[int]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """The cells at `indices` of a row, in that order, as one C-level call."""
    if not indices:
        return lambda values: ()
    if len(indices) == 1:
        index = indices[0]
        return lambda values: (values[index],)
    return itemgetter(*indices)


def annotate(data: bytes, columns: Sequence[Column], errors: Sequence[CellError]) -> bytes:
    """The operator's workbook back with each bad cell filled red and commented, plus a sheet of errors.

    Streams: the first sheet is copied cell by cell (values and number formats) into a
    write-only workbook; the operator's own column order and row numbers are kept. An error's
    column is found by its header when the operator moved columns, else by its letter.
    """
    wb_in = _open(data)
    try:
        src = wb_in.worksheets[0]
        src.reset_dimensions()
        rows = src.iter_rows()
        header_row, header_cells = 0, ()
        for header_cells in rows:  # the header is the first non-blank row, as read_rows() takes it
            header_row += 1
            if any(_text(c.value) for c in header_cells):
                break
        headers = [_text(c.value) for c in header_cells]
        by_header = {h: get_column_letter(i) for i, h in enumerate(headers, start=1) if h}
        located = [_locate(e, by_header) for e in errors]
        by_row: dict[int, dict[str, list[CellError]]] = {}
        for e in located:
            by_row.setdefault(e.row, {}).setdefault(e.column or "A", []).append(e)

        known = {c.header: c for c in columns}
        wb = Workbook(write_only=True)
        ws = _data_sheet(wb, src.title, columns, [(h, known.get(h)) for h in headers], marks=by_row.get(header_row),
                         header_row=header_row)
        for excel_row, cells in enumerate(rows, start=header_row + 1):
            out = []
            marks = by_row.get(excel_row, {})
            width = max(len(cells), max(map(_col_index, marks), default=0))
            for index in range(width):
                cell = cells[index] if index < len(cells) else None
                value = getattr(cell, "value", None)
                # A cell our export escaped already stays as it is, so the round trip reads the same value.
                kept = value if isinstance(value, str) and _ESCAPED.match(value) else safe_cell(value)
                oc = WriteOnlyCell(ws, value=_clean(kept))
                number_format = getattr(cell, "number_format", None)
                if number_format and number_format != "General":
                    oc.number_format = number_format
                problems = marks.get(get_column_letter(index + 1))
                if problems:
                    oc.fill = _ERROR_FILL
                    oc.comment = _comment("\n".join(p.message for p in problems))
                out.append(oc)
            ws.append(out)
        letters = [(by_header[c.header], c) for c in columns if c.header in by_header]
        _choices_sheet(wb, ws, letters)
        _error_sheet(wb, located)
        return _save(wb)
    finally:
        wb_in.close()


# ---- helpers ---------------------------------------------------------------------------------


def _open(data: bytes):
    try:
        return load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError):
        raise SheetError("文件不是有效的 Excel 工作簿（.xlsx），请使用下载的模板") from None


def _match_headers(header: Sequence[Any], columns: Sequence[Column]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, value in enumerate(header):
        name = _header_name(value)
        if not name:
            continue
        if name in found:
            raise SheetError(f"列名重复：{name}")
        found[name] = index
    missing = [c.header for c in columns if c.required and c.header not in found]
    if missing:
        raise SheetError("缺少必填列：" + "、".join(missing))
    return {c.key: found[c.header] for c in columns if c.header in found}


def _header_name(value: Any) -> str:
    # Operators often mark required headers with "*" themselves; match the bare name.
    return _text(value).lstrip("*＊").strip()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.strip()
        return text[1:] if _ESCAPED.match(text) else text
    if type(value) is date:  # the usual date cell, ahead of the checks it would pass through
        return value.isoformat()
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value).strip()


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def _value_cell(ws, column: Column, value: Any) -> Any:
    """A plain value where Excel's default is right (cheap in write-only mode); a styled cell for
    text columns (kept as text when edited later: leading zeros, long digit strings) and dates."""
    if value is None:
        return None
    if column.text:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = _text(value)
        cell = WriteOnlyCell(ws, value=_clean(safe_cell(value)))
        cell.number_format = "@"
        return cell
    if isinstance(value, str):
        return _clean(safe_cell(value))
    if isinstance(value, datetime):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = "yyyy-mm-dd hh:mm:ss"
        return cell
    if isinstance(value, date):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = "yyyy-mm-dd"
        return cell
    return value


def _data_sheet(wb: Workbook, title: str, columns: Sequence[Column], headers, marks=None, header_row: int = 1):
    """Header row from (text, Column or None) pairs; widths, text formats, frozen header."""
    ws = wb.create_sheet(_sheet_title(title))
    ws.freeze_panes = f"A{header_row + 1}"
    for _ in range(header_row - 1):  # the operator's blank rows above the header keep row numbers
        ws.append([])
    cells = []
    for index, (text, column) in enumerate(headers, start=1):
        letter = get_column_letter(index)
        cell = WriteOnlyCell(ws, value=_clean(safe_cell(text)) if text else None)
        cell.fill = _HEADER_FILL
        cell.alignment = _CENTER
        cell.font = _REQUIRED_FONT if column and column.required else _HEADER_FONT
        note = _header_note(column) if column else ""
        problems = (marks or {}).get(letter)
        if problems:
            cell.fill = _ERROR_FILL
            note = "\n".join(p.message for p in problems)
        if note:
            cell.comment = _comment(note)
        cells.append(cell)
        if column:
            ws.column_dimensions[letter].width = column.width
            if column.text:
                ws.column_dimensions[letter].number_format = "@"
    ws.append(cells)
    return ws


def _header_note(column: Column) -> str:
    parts = []
    if column.required:
        parts.append("必填")
    if column.note:
        parts.append(column.note)
    if column.choices:
        parts.append("请从下拉列表中选择")
    return "\n".join(parts)


def _choices_sheet(wb: Workbook, ws, letters: Sequence[tuple[str, Column]]) -> None:
    """Dropdowns read their lists from a hidden sheet: an inline list is limited to 255 characters."""
    with_choices = [(letter, c) for letter, c in letters if c.choices]
    if not with_choices:
        return
    sheet = wb.create_sheet(CHOICES_SHEET)
    sheet.sheet_state = "hidden"
    longest = max(len(c.choices) for _, c in with_choices)
    for i in range(longest):
        sheet.append([_clean(safe_cell(c.choices[i])) if i < len(c.choices) else None for _, c in with_choices])
    for index, (letter, column) in enumerate(with_choices, start=1):
        source = get_column_letter(index)
        dv = DataValidation(
            type="list",
            formula1=f"{quote_sheetname(CHOICES_SHEET)}!${source}$1:${source}${len(column.choices)}",
            allow_blank=True,
            showErrorMessage=True,
            errorTitle="输入值无效",
            error=f"{column.header}：请从下拉列表中选择",
        )
        dv.add(f"{letter}2:{letter}{_MAX_ROW}")
        ws.data_validations.append(dv)


def _error_sheet(wb: Workbook, errors: Sequence[CellError]) -> None:
    ws = wb.create_sheet(ERROR_SHEET)
    ws.freeze_panes = "A2"
    header = []
    for text, width in (("行", 8), ("列", 8), ("列名", 16), ("值", 24), ("错误", 60)):
        cell = WriteOnlyCell(ws, value=text)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        header.append(cell)
        ws.column_dimensions[get_column_letter(len(header))].width = width
    ws.append(header)
    for e in sorted(errors, key=lambda e: (e.row, _col_index(e.column))):
        value = e.value if isinstance(e.value, str | int | float | date) or e.value is None else str(e.value)
        ws.append([e.row, e.column, e.header, _clean(safe_cell(value)), _clean(safe_cell(e.message))])


def _locate(error: CellError, by_header: dict[str, str]) -> CellError:
    letter = by_header.get(error.header) if error.header else None
    if letter and letter != error.column:
        return CellError(error.row, letter, error.header, error.value, error.message)
    return error


def _col_index(letter: str) -> int:
    index = 0
    for ch in letter or "A":
        index = index * 26 + (ord(ch.upper()) - 64)
    return index


def _comment(text: str) -> Comment:
    comment = Comment(text, "系统")
    comment.width = 240
    comment.height = max(60, 20 * (text.count("\n") + 2))
    return comment


def _sheet_title(title: str) -> str:
    cleaned = re.sub(r"[\\/*?:\[\]]", "_", title).strip() or "Sheet1"
    return cleaned[:31]


def _save(wb: Workbook) -> bytes:
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
