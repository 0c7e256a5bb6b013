"""The shared spreadsheet toolkit, checked by opening what it produces with openpyxl."""

from __future__ import annotations

import io
from datetime import date, datetime

import pytest
from openpyxl import Workbook, load_workbook

from services.common.errors import Invalid
from services.common.sheets import (
    CHOICES_SHEET,
    ERROR_SHEET,
    CellError,
    Column,
    SheetError,
    annotate,
    column_letter,
    export,
    read_rows,
    safe_cell,
    template,
)

ETHNIC = [f"民族{i:02d}" for i in range(1, 57)]  # 56 labels: longer than an inline list allows
COLUMNS = [
    Column("student_number", "学号", required=True, text=True, note="12位数字", width=16),
    Column("name", "姓名", required=True),
    Column("gender", "性别", required=True, choices=("男", "女")),
    Column("ethnic", "民族", choices=ETHNIC),
    Column("birth_date", "出生日期", note="yyyy-mm-dd"),
    Column("national_id", "身份证件号", text=True, width=22),
]


def _book(data: bytes):
    return load_workbook(io.BytesIO(data))


def _xlsx(rows: list[list]) -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    for row in ws.iter_rows():
        for cell in row:
            if cell.data_type == "f":  # an operator's text "=1", as Excel stores a quoted entry
                cell.data_type = "s"
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


# ---- template ---------------------------------------------------------------------------------


def test_template_header_notes_widths_freeze_and_text_format() -> None:
    wb = _book(template(COLUMNS, "新生导入"))
    ws = wb.worksheets[0]
    assert ws.title == "新生导入"
    assert [c.value for c in ws[1]] == [c.header for c in COLUMNS]
    assert ws.freeze_panes == "A2"
    assert "必填" in ws["A1"].comment.text and "12位数字" in ws["A1"].comment.text
    assert ws["E1"].comment.text == "yyyy-mm-dd"
    assert ws["A1"].font.color.rgb.endswith("C00000")  # required headers in red
    assert ws["D1"].font.color is None or not ws["D1"].font.color.rgb.endswith("C00000")
    assert ws.column_dimensions["A"].width == 16
    assert ws.column_dimensions["F"].width == 22
    assert ws.column_dimensions["A"].number_format == "@"
    assert ws.column_dimensions["F"].number_format == "@"
    assert ws.column_dimensions["B"].number_format == "General"
    assert ws.max_row == 1


def test_template_dropdowns_come_from_a_hidden_sheet() -> None:
    wb = _book(template(COLUMNS, "新生导入"))
    ws = wb.worksheets[0]
    choices = wb[CHOICES_SHEET]
    assert choices.sheet_state == "hidden"
    validations = {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}
    assert set(validations) == {"C2:C1048576", "D2:D1048576"}
    gender, ethnic = validations["C2:C1048576"], validations["D2:D1048576"]
    assert gender.type == "list" and gender.showErrorMessage
    assert gender.formula1 == f"'{CHOICES_SHEET}'!$A$1:$A$2"
    assert ethnic.formula1 == f"'{CHOICES_SHEET}'!$B$1:$B$56"
    assert [choices.cell(row=i, column=1).value for i in (1, 2)] == ["男", "女"]
    assert [choices.cell(row=i, column=2).value for i in range(1, 57)] == ETHNIC


def test_template_example_row_keeps_text_columns_as_text() -> None:
    wb = _book(template(COLUMNS, "t", example={"student_number": "012301010101", "name": "张三", "gender": "男"}))
    ws = wb.worksheets[0]
    assert ws["A2"].value == "012301010101" and ws["A2"].number_format == "@"
    assert ws["B2"].value == "张三"


def test_long_or_odd_title_is_a_valid_sheet_name() -> None:
    wb = _book(template(COLUMNS, "学生/名单:2024[新生]导入模板" * 3))
    assert len(wb.worksheets[0].title) <= 31 and "/" not in wb.worksheets[0].title


# ---- read_rows ----------------------------------------------------------------------------------


def test_read_rows_matches_headers_in_any_order_and_normalises_values() -> None:
    data = _xlsx(
        [
            ["备注", "*姓名", "学号", "性别", "出生日期", "身份证件号"],
            ["x", "  张三 ", 202301010101, "男", datetime(2005, 3, 4), "11010520050304001X"],
            [None, None, None, None, None, None],
            ["", "李四", "012301010102", "女", date(2005, 1, 2), 1.5],
        ]
    )
    rows = list(read_rows(data, COLUMNS))
    assert rows == [
        (
            2,
            {
                "student_number": "202301010101",
                "name": "张三",
                "gender": "男",
                "ethnic": "",
                "birth_date": "2005-03-04",
                "national_id": "11010520050304001X",
            },
        ),
        (
            4,
            {
                "student_number": "012301010102",
                "name": "李四",
                "gender": "女",
                "ethnic": "",
                "birth_date": "2005-01-02",
                "national_id": "1.5",
            },
        ),
    ]


def test_read_rows_float_whole_numbers_have_no_decimal_point() -> None:
    data = _xlsx([["学号", "姓名", "性别"], [202301010101.0, "王五", "男"]])
    assert next(read_rows(data, COLUMNS))[1]["student_number"] == "202301010101"


def test_read_rows_skips_rows_with_only_ignored_columns_filled() -> None:
    data = _xlsx([["学号", "姓名", "性别", "备注"], [None, None, None, "note"], ["1", "a", "男", None]])
    assert [r for r, _ in read_rows(data, COLUMNS)] == [3]


def test_missing_required_headers_are_named() -> None:
    data = _xlsx([["学号", "民族"], ["1", "汉族"]])
    with pytest.raises(SheetError) as raised:
        list(read_rows(data, COLUMNS))
    assert "姓名" in str(raised.value) and "性别" in str(raised.value) and "学号" not in str(raised.value)
    assert isinstance(raised.value, Invalid)


def test_not_an_xlsx() -> None:
    with pytest.raises(SheetError, match="不是有效的 Excel"):
        list(read_rows(b"name,number\n1,2\n", COLUMNS))


def test_empty_sheet() -> None:
    with pytest.raises(SheetError, match="工作表为空"):
        list(read_rows(_xlsx([]), COLUMNS))


def test_duplicate_header() -> None:
    with pytest.raises(SheetError, match="列名重复：姓名"):
        list(read_rows(_xlsx([["学号", "姓名", "性别", "姓名"]]), COLUMNS))


# ---- escaping -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["=1+1", "+86 138", "-2", "@SUM(A1)", "\t=cmd", "\r=cmd", "'=x"])
def test_safe_cell_escapes_formula_starts(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["张三", "a=b", "", "'plain", 5, -5, None, date(2020, 1, 1)])
def test_safe_cell_leaves_other_values(value) -> None:
    assert safe_cell(value) == value


def test_export_never_writes_a_formula() -> None:
    rows = [{"student_number": '=HYPERLINK("http://x")', "name": "@cmd", "gender": "+1", "national_id": "-1"}]
    ws = _book(export(COLUMNS, rows, "导出")).worksheets[0]
    for cell in ws[2]:
        assert cell.data_type != "f"
    assert ws["A2"].value == '\'=HYPERLINK("http://x")'
    assert ws["B2"].value == "'@cmd"
    assert ws["C2"].value == "'+1"
    assert ws["F2"].value == "'-1"


# ---- export and the round trip ------------------------------------------------------------------


def test_export_layout_matches_template_and_round_trips() -> None:
    rows = [
        {
            "student_number": "012301010101",
            "name": "=张三",
            "gender": "男",
            "ethnic": "民族01",
            "birth_date": date(2005, 3, 4),
            "national_id": 11010520050304001,
        },
        {"student_number": "202301010102", "name": "'=李四", "gender": "女", "ethnic": None, "birth_date": None},
        {"student_number": "202301010103", "name": "\t-王五", "gender": "女", "birth_date": "2005-01-01"},
    ]
    data = export(COLUMNS, rows, "学生名单")
    wb = _book(data)
    ws = wb.worksheets[0]
    tpl = _book(template(COLUMNS, "学生名单")).worksheets[0]
    assert [c.value for c in ws[1]] == [c.value for c in tpl[1]]
    assert ws.freeze_panes == "A2"
    assert ws["A1"].comment.text == tpl["A1"].comment.text
    assert {str(d.sqref) for d in ws.data_validations.dataValidation} == {"C2:C1048576", "D2:D1048576"}
    assert ws["A2"].number_format == "@" and ws["F2"].value == "11010520050304001"
    assert ws["E2"].value == datetime(2005, 3, 4) and ws["E2"].number_format == "yyyy-mm-dd"

    back = list(read_rows(data, COLUMNS))
    assert [r for r, _ in back] == [2, 3, 4]
    assert back[0][1] == {
        "student_number": "012301010101",
        "name": "=张三",
        "gender": "男",
        "ethnic": "民族01",
        "birth_date": "2005-03-04",
        "national_id": "11010520050304001",
    }
    assert back[1][1]["name"] == "'=李四"
    assert back[2][1]["name"] == "\t-王五"
    assert back[2][1]["birth_date"] == "2005-01-01"


def test_export_strips_characters_excel_cannot_hold() -> None:
    ws = _book(export(COLUMNS, [{"name": "张\x00三\x07"}], "x")).worksheets[0]
    assert ws["B2"].value == "张三"


# ---- annotate -----------------------------------------------------------------------------------


def test_annotate_marks_cells_and_lists_errors() -> None:
    data = _xlsx(
        [
            ["学号", "姓名", "性别", "身份证件号"],
            ["202301010101", "张三", "男", "110105200503040011"],
            ["202301010102", "", "X", None],
        ]
    )
    errors = [
        CellError(3, column_letter(COLUMNS, "name"), "姓名", "", "姓名必填"),
        CellError(3, column_letter(COLUMNS, "gender"), "性别", "X", "性别应为男或女"),
        CellError(3, "C", "性别", "X", "第二个问题"),
        CellError(2, "D", "身份证件号", "110105200503040011", "=校验位不正确"),
    ]
    wb = _book(annotate(data, COLUMNS, errors))
    ws = wb.worksheets[0]
    assert [c.value for c in ws[1]] == ["学号", "姓名", "性别", "身份证件号"]
    assert ws["A2"].value == "202301010101" and ws["C3"].value == "X"
    assert ws["B3"].fill.fgColor.rgb.endswith("FFC7CE") and ws["B3"].comment.text == "姓名必填"
    assert ws["C3"].comment.text == "性别应为男或女\n第二个问题"
    assert ws["D2"].fill.fgColor.rgb.endswith("FFC7CE")
    assert ws["A2"].comment is None and not ws["A2"].fill.fgColor.rgb.endswith("FFC7CE")
    assert ws.freeze_panes == "A2"

    sheet = wb[ERROR_SHEET]
    listed = [[c.value for c in row] for row in sheet.iter_rows()]
    assert listed[0] == ["行", "列", "列名", "值", "错误"]
    assert listed[1:] == [
        [2, "D", "身份证件号", "110105200503040011", "'=校验位不正确"],
        [3, "B", "姓名", None, "姓名必填"],
        [3, "C", "性别", "X", "性别应为男或女"],
        [3, "C", "性别", "X", "第二个问题"],
    ]


def test_annotate_follows_columns_the_operator_moved() -> None:
    # The operator put 姓名 in column D; the caller's letter (template position B) is corrected by header.
    data = _xlsx([["学号", "性别", "备注", "姓名"], ["202301010101", "男", "", "=1"]])
    errors = [CellError(2, column_letter(COLUMNS, "name"), "姓名", "=1", "姓名不能以=开头")]
    wb = _book(annotate(data, COLUMNS, errors))
    ws = wb.worksheets[0]
    assert ws["D2"].comment.text == "姓名不能以=开头"
    assert ws["B2"].comment is None
    assert ws["D2"].value == "'=1"  # the operator's value is escaped too, and reads back unchanged
    assert [c.value for c in wb[ERROR_SHEET][2]][:3] == [2, "D", "姓名"]
    assert next(read_rows(annotate(data, COLUMNS, errors), COLUMNS))[1]["name"] == "=1"


def test_annotated_workbook_can_be_fixed_and_imported_again() -> None:
    data = export(COLUMNS, [{"student_number": "012301010101", "name": "张三", "gender": "男"},
                            {"student_number": "012301010102", "name": "=A1", "gender": "'=B1"}], "名单")
    again = annotate(data, COLUMNS, [CellError(2, "C", "性别", "男", "示例错误")])
    wb = _book(again)
    assert wb.sheetnames[0] == "名单" and ERROR_SHEET in wb.sheetnames
    assert wb.worksheets[0]["A2"].number_format == "@"  # the operator's formats survive
    assert {str(d.sqref) for d in wb.worksheets[0].data_validations.dataValidation} == {"C2:C1048576", "D2:D1048576"}
    assert [row for _, row in read_rows(again, COLUMNS)] == [row for _, row in read_rows(data, COLUMNS)]


def test_row_level_error_goes_on_the_first_cell() -> None:
    data = _xlsx([["学号", "姓名", "性别"], ["1", "a", "男"]])
    wb = _book(annotate(data, COLUMNS, [CellError(2, "", "", None, "与第5行重复")]))
    assert wb.worksheets[0]["A2"].comment.text == "与第5行重复"
    assert [c.value for c in wb[ERROR_SHEET][2]] == [2, None, None, None, "与第5行重复"]


def test_column_letter() -> None:
    assert column_letter(COLUMNS, "student_number") == "A"
    assert column_letter(COLUMNS, "national_id") == "F"
    with pytest.raises(ValueError):
        column_letter(COLUMNS, "nope")


def test_row_numbers_are_excel_row_numbers_when_the_sheet_starts_lower() -> None:
    data = _xlsx([[None], ["学号", "姓名", "性别"], [None], ["1", "张三", "男"]])
    assert [r for r, _ in read_rows(data, COLUMNS)] == [4]


def test_annotate_keeps_row_numbers_when_the_header_is_lower() -> None:
    data = _xlsx([[None], ["学号", "姓名", "性别"], ["1", "张三", "X"]])
    errors = [CellError(row, column_letter(COLUMNS, "gender"), "性别", v["gender"], "性别错误")
              for row, v in read_rows(data, COLUMNS)]
    ws = _book(annotate(data, COLUMNS, errors)).worksheets[0]
    assert ws["A2"].value == "学号" and ws["C3"].comment.text == "性别错误" and ws.freeze_panes == "A3"
