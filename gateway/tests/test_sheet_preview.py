"""The sheet pages' shared macros (`templates/_sheet_preview.html`) rendered on their own: what each state of
a preview or an apply shows. The pages using them are checked with their services in their own tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, FileSystemLoader

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
PAGE = """{% from "_sheet_preview.html" import sheet_outcome %}
{% call(r) sheet_outcome(preview, result, "/sheet", token, annotated, ("行", "学号"),
    "确认导入这 %s 条吗？", "未导入任何数据", "已导入的数据", verb="导入", **options) %}
<td>{{ r.row }}</td><td>{{ r.number }}</td>{% endcall %}"""
ERROR = {"row": 3, "column": "B", "header": "学号", "value": None, "message": "学号不能为空"}


@pytest.fixture
def env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    env.globals.update(csrf_field="csrf_token", csrf_token=lambda: "csrf-1")
    return env


def render(env: Environment, preview: dict[str, Any] | None = None, result: dict[str, Any] | None = None,
           token: str = "tok-1", annotated: str = "", **options: Any) -> str:
    html = env.from_string(PAGE).render(preview=preview, result=result, token=token, annotated=annotated,
                                        options=options)
    return re.sub(r"\s+", " ", html)


def test_a_clean_preview_offers_the_confirmation_with_its_token(env: Environment) -> None:
    rows = [{"row": 2, "number": "S1"}, {"row": 3, "number": "S2"}]
    page = render(env, preview={"ok": True, "count": 2, "rows": rows})
    assert "预览：共 2 行，全部正确" in page
    assert 'data-confirm="确认导入这 2 条吗？"' in page and 'name="token" value="tok-1"' in page
    assert 'name="csrf_token" value="csrf-1"' in page and 'name="action" value="apply"' in page
    assert "确认导入（2 人）" in page
    assert "<th>行</th><th>学号</th>" in page and "<td>2</td><td>S1</td>" in page and "<td>3</td><td>S2</td>" in page
    assert "仅列出前" not in page


def test_the_confirmation_counts_what_it_applies_and_carries_extra_fields(env: Environment) -> None:
    preview = {"ok": True, "count": 5, "rows": [{"row": 2, "number": "S1"}]}
    page = render(env, preview=preview, count=3, ok_note="（换号 3 人）", fields=[("依据", "reason", "文号", 200)])
    assert "全部正确（换号 3 人）" in page and "确认导入（3 人）" in page
    assert 'data-confirm="确认导入这 3 条吗？"' in page
    assert '<label>依据<input type="text" name="reason" value="文号" required maxlength="200"></label>' in page
    assert "仅列出前 1 行。" in page  # five rows, one shown
    assert "确认导入" not in render(env, preview=preview, count=0)  # nothing to apply: no button


def test_errors_list_each_cell_and_the_rows_that_passed(env: Environment) -> None:
    preview = {"ok": False, "count": 2, "error_count": 4, "error_rows": 1, "errors": [ERROR],
               "rows": [{"row": 2, "number": "S1"}]}
    page = render(env, preview=preview, annotated="/sheet/result.xlsx")
    assert "发现 4 处错误（1 行），不能导入" in page and "确认导入" not in page
    assert "<td>3</td><td>B</td><td>学号</td><td></td><td>学号不能为空</td>" in page  # no value: an empty cell
    assert "仅列出前 1 处，完整列表见标注文件。" in page and 'href="/sheet/result.xlsx"' in page
    assert "检查通过的行（改正错误后将导入）" in page and "<td>2</td><td>S1</td>" in page
    refused = render(env, result={**preview, "error_count": 1}, annotated="")
    assert "发现 1 处错误（1 行），未导入任何数据" in refused
    assert "下载标注错误的文件" not in refused and "仅列出前" not in refused


def test_an_applied_sheet_lists_what_was_done(env: Environment) -> None:
    page = render(env, result={"ok": True, "count": 1, "rows": [{"row": 2, "number": "S1"}]})
    assert "<h2>已导入的数据</h2>" in page and "<td>2</td><td>S1</td>" in page
    assert "确认导入" not in page and "检查通过的行" not in page
    assert render(env).strip() == ""  # nothing uploaded yet: no section
