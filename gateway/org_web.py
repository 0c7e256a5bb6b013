"""组织机构 page (`/roster/org`): the org tree college → major → class with codes and on-campus
student counts; student affairs adds units (the R6 code assembled from the parent's code and the
numbers typed), renames them, moves them under another parent (调整上级: codes and student
numbers kept) and deletes empty ones. Academic affairs reads it. The roster service checks every
rule again (services/roster/domain/org_tree.py); its errors name the input they concern (`.field`)
and are shown beside it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, request, url_for

from gateway import auth
from gateway.security import check_form
from gateway.spreadsheets import SheetStep, kept, preview_or_apply, xlsx_response
from gateway.web import _page, _render
from services.common.caller import Caller
from services.common.errors import Conflict, Forbidden, Invalid, NotFound

bp = Blueprint("org_web", __name__, url_prefix="/roster/org")

MENU_KEY = "roster_org"
MAX_UPLOAD_MB = 10  # tens of thousands of units are well under 1 MB
CRUMBS = [("学籍管理", None), ("组织机构", None)]
FORMS = ("college", "major", "class", "edit")
# The inputs of each form a service error's field stands for (the code is typed as numbers).
FIELD_INPUTS = {
    "college": {"code": "code", "name": "name", "parent_code": "code", "kind": "code"},
    "major": {"code": "major_no", "name": "name", "parent_code": "parent_code", "kind": "major_no"},
    "class": {"code": "class_no", "name": "name", "parent_code": "parent_code", "kind": "class_no"},
    "edit": {"code": "name", "name": "name", "parent_code": "parent_code", "kind": "name"},
}


@bp.before_request
def _csrf() -> None:
    check_form()


def _text(name: str) -> str:
    return request.form.get(name, "").strip()


def posted_unit(form: str, units: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The unit a form describes; new codes by R6: major = college + major no., class = entry year +
    major + class no. (what is typed is passed on as it is: the service says what is wrong with it)."""
    if form == "college":
        return {"code": _text("code"), "name": _text("name"), "kind": "college", "parent_code": None}
    if form == "major":
        parent = _text("parent_code")
        return {"code": parent + _text("major_no"), "name": _text("name"), "kind": "major", "parent_code": parent}
    if form == "class":
        parent = _text("parent_code")
        return {"code": _text("entry_year") + parent + _text("class_no"), "name": _text("name"), "kind": "class",
                "parent_code": parent}
    current = units.get(_text("code"))
    if current is None:
        raise NotFound(f"组织单位 {_text('code')} 不存在")
    moving = request.form.get("action") == "move"
    return {"code": current["code"], "name": _text("name"), "kind": current["kind"],
            "parent_code": (_text("parent_code") or None) if moving else current["parent_code"]}


def _error_text(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args else "操作失败"


@bp.route("", methods=["GET", "POST"])
def tree() -> str | Response:
    caller = auth.require_login()
    _page(caller, MENU_KEY)
    listed = auth.call("roster", "list_org_units")
    units = {row["code"]: row for row in listed["items"]}
    form, error, field_errors, values = "", None, {}, {}
    if request.method == "POST":
        form = request.form.get("form", "")
        if form not in FORMS:
            raise Invalid("未知的表单", "form")
        values = {k: v for k, v in request.form.items() if k != "csrf_token"}
        try:
            unit = posted_unit(form, units)
            values["assembled"] = unit["code"]
            auth.call("roster", "upsert_org_units", [unit], form != "edit")  # 新增 forms add only
            return redirect(url_for("org_web.tree", saved=unit["code"]))
        except (Invalid, Forbidden, NotFound) as exc:
            error = _error_text(exc)
            field_errors = {FIELD_INPUTS[form].get(exc.field or "", "name"): error} if exc.field else {}
    return _page_of(caller, listed, units, form=form, error=error, field_errors=field_errors, values=values)


def _page_of(caller: Caller, listed: dict[str, Any], units: dict[str, dict[str, Any]], **context: Any) -> str:
    # The unit being edited: chosen by its 修改 link, or still open after a refused edit.
    chosen = context["values"].get("code", "") if context["form"] == "edit" else request.args.get("edit", "")
    editing = units.get(chosen)
    message = None
    if request.args.get("saved"):
        message = f"已保存：{request.args['saved']}"
    elif request.args.get("deleted"):
        message = f"已删除：{request.args['deleted']}"
    by_kind: dict[str, list[dict[str, Any]]] = {"college": [], "major": [], "class": []}
    for row in listed["items"]:
        by_kind.setdefault(row["kind"], []).append(row)
    parent_kind = {"major": "college", "class": "major"}
    context.setdefault("sheet", SheetStep())
    return _render("roster_org.html", caller, CRUMBS, items=listed["items"], may_edit=listed["may_edit"],
                   entry_years=listed.get("entry_years", []), by_kind=by_kind, editing=editing,
                   move_choices=by_kind.get(parent_kind.get(editing["kind"], ""), []) if editing else [],
                   message=message, **context)


# -- 导入: units from a sheet, preview then 确认导入 (gateway/spreadsheets.preview_or_apply) -------------


@bp.get("/template.xlsx")
def template() -> Response:
    caller = auth.require_login()
    _page(caller, MENU_KEY)
    made = auth.call("roster", "org_units_template")
    return xlsx_response(made["content"], made["filename"])


@bp.post("/import")
def import_units() -> str | Response:
    caller = auth.require_login()
    _page(caller, MENU_KEY)
    step, error = SheetStep(), None
    try:
        step = preview_or_apply(caller.username, MAX_UPLOAD_MB,
                                lambda c: auth.call("roster", "preview_org_units_import", c),
                                lambda c: auth.call("roster", "apply_org_units_import", c))
    except (Invalid, Forbidden, NotFound) as exc:
        error = _error_text(exc)
    listed = auth.call("roster", "list_org_units")
    units = {row["code"]: row for row in listed["items"]}
    return _page_of(caller, listed, units, form="", error=None, field_errors={}, values={}, sheet=step,
                    sheet_error=error)


@bp.get("/import/result/<token>.xlsx")
def import_result(token: str) -> Response:
    caller = auth.require_login()
    _page(caller, MENU_KEY)
    return xlsx_response(kept(token, caller.username), "组织机构导入_错误标注.xlsx")


@bp.post("/<code>/delete")
def delete(code: str) -> str | Response:
    caller = auth.require_login()
    _page(caller, MENU_KEY)
    try:
        auth.call("roster", "delete_org_unit", code)
        return redirect(url_for("org_web.tree", deleted=code))
    except (Conflict, Forbidden, NotFound) as exc:
        listed = auth.call("roster", "list_org_units")
        units = {row["code"]: row for row in listed["items"]}
        return _page_of(caller, listed, units, form="", error=_error_text(exc), field_errors={}, values={})
