"""宿舍管理 pages: building → room → bed browser, resident search, single changes,
bulk moves with a preview, imports, automatic allocation, check-out and reports.

Every page is also checked against the menu here; the housing service checks the
caller's role and scope again on every call (I6).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, request, url_for

from gateway import auth, menu
from gateway.presenters import PAGE_SIZES, Pagination, page_args
from gateway.security import check_form
from gateway.spreadsheets import uploaded_xlsx_b64, xlsx_response
from gateway.web import _page, _render
from services.common.errors import Conflict, Forbidden, Invalid, NotFound

bp = Blueprint("housing_web", __name__, url_prefix="/housing")

MAX_UPLOAD_MB = 10
GROUP = ("宿舍管理", None)


@bp.before_request
def _csrf() -> None:
    check_form()




def _rows_from_text(text: str) -> list[dict[str, Any]]:
    """Pasted lines "学号,床位或房间[,跨学院原因]" (comma, tab or spaces)."""
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        parts = [p.strip() for p in line.replace("\t", ",").replace("，", ",").split(",")]
        if len(parts) == 1:
            parts = line.split()
        if not any(parts):
            continue
        if len(parts) < 2:
            raise Invalid(f"第 {i} 行：请按“学号,床位或房间[,跨学院原因]”填写")
        rows.append({"row": i, "student_number": parts[0], "target": parts[1],
                     "override_reason": parts[2] if len(parts) > 2 and parts[2] else None})
    if not rows:
        raise Invalid("请填写调整名单")
    return rows


# -- browser ------------------------------------------------------------------------------
SAVED = {"building": "楼栋已保存", "campus": "校区已保存", "room": "房间已保存", "allocated": "房间已分配给学院",
         "deleted": "床位已删除"}


def _int_field(name: str, what: str) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"{what}必须是整数") from None


@bp.route("/buildings", methods=["GET", "POST"])
def buildings() -> str | Response:
    caller = auth.require_login()
    _page(caller, "housing_buildings")
    error = None
    if request.method == "POST":
        try:
            if request.form.get("what") == "campus":
                auth.call("housing", "save_campus", request.form.get("code", "").strip(),
                          request.form.get("name", "").strip())
                return redirect(url_for("housing_web.buildings", saved="campus"))
            auth.call("housing", "save_building", {
                "code": request.form.get("code", "").strip(), "name": request.form.get("name", "").strip(),
                "gender_policy": request.form.get("gender_policy", ""),
                "campus_code": request.form.get("campus_code", "").strip() or None,
                "floors": _int_field("floors", "楼层数")})
            return redirect(url_for("housing_web.buildings", saved="building"))
        except (Invalid, Conflict, NotFound) as exc:
            error = str(exc.args[0]) if exc.args else "保存失败"
    return _render("housing_buildings.html", caller, [GROUP, ("楼栋房间", None)],
                   buildings=auth.call("housing", "list_buildings"), campuses=auth.call("housing", "list_campuses"),
                   policies=auth.call("housing", "choices")["gender_policies"],
                   can_write=caller.role == "housing_centre", error=error,
                   message=SAVED.get(request.args.get("saved", "")))


@bp.route("/buildings/<code>", methods=["GET", "POST"])
def building(code: str) -> str | Response:
    caller = auth.require_login()
    _page(caller, "housing_buildings")
    error = None
    if request.method == "POST":
        try:
            what = request.form.get("what")
            if what == "allocate":
                college = request.form.get("college_code", "").strip() or None
                rooms = [{"building_code": code, "room_no": r} for r in
                         request.form.get("room_nos", "").replace("，", ",").replace(" ", ",").split(",") if r]
                labels = [b for b in request.form.get("bed_labels", "").replace("，", ",").replace(" ", ",").split(",")
                          if b]
                if not rooms and not labels:
                    raise Invalid("请填写房间号或床位编号")
                if rooms:
                    auth.call("housing", "allocate_rooms", rooms, college)
                if labels:
                    auth.call("housing", "allocate_beds", labels, college)
                return redirect(url_for("housing_web.building", code=code, saved="allocated"))
            if what == "delete_bed":
                auth.call("housing", "delete_bed", request.form.get("label", ""))
                return redirect(url_for("housing_web.building", code=code, saved="deleted"))
            auth.call("housing", "save_room", {
                "building_code": code, "room_no": request.form.get("room_no", "").strip(),
                "capacity": _int_field("capacity", "容量"), "floor": _int_field("floor", "楼层"),
                "room_type": request.form.get("room_type", "").strip(), "fee": _int_field("fee", "收费标准"),
                "college_code": request.form.get("college_code", "").strip() or None,
                "beds": _int_field("beds", "新增床位数") or 0})
            return redirect(url_for("housing_web.building", code=code, saved="room"))
        except (Invalid, Conflict, NotFound) as exc:
            error = str(exc.args[0]) if exc.args else "保存失败"
    data = auth.call("housing", "building_rooms", code)
    return _render("housing_building.html", caller,
                   [GROUP, ("楼栋房间", url_for("housing_web.buildings")), (data["building"]["name"], None)],
                   building=data["building"], rooms=data["rooms"], can_write=caller.role == "housing_centre",
                   error=error, message=SAVED.get(request.args.get("saved", "")))


@bp.get("/beds/<label>")
def bed(label: str) -> str:
    caller = auth.require_login()
    _page(caller, "housing_buildings")
    return _render("housing_bed.html", caller, [GROUP, ("楼栋房间", url_for("housing_web.buildings")), (label, None)],
                   label=label, stays=auth.call("housing", "stays_of_bed", label))


@bp.get("/students/<student_number>")
def student(student_number: str) -> str:
    """住宿记录: the current bed and every stay of one student. Counselors and deputy
    secretaries read students in their scope (the service refuses others, H4); a student
    reads their own record only (我的住宿)."""
    caller = auth.require_login()
    own = menu.allowed(caller.role, "housing_mine")
    if own:
        if student_number != caller.username:
            raise Forbidden("只能查看本人的住宿记录")
    else:
        _page(caller, "housing_residents")
    outcomes = auth.rpc().call_many({
        "bed": ("housing", "occupancy", student_number),
        "stays": ("housing", "bed_history", student_number),
        "found": ("housing", "residents", student_number, 1, 5),
    }, caller=caller)
    # Scope and existence are decided by the first two; their errors are the page's.
    current, stays = outcomes["bed"].unwrap(), outcomes["stays"].unwrap()
    person = next((r for r in outcomes["found"].unwrap()["items"] if r["student_number"] == student_number), None)
    open_stay = next((s for s in stays if s["ended_at"] is None), None)
    title = f"{person['name']}（{student_number}）" if person else student_number
    trail = [GROUP, ("我的住宿", None)] if own else [GROUP, ("住宿查询", url_for("housing_web.residents")),
                                                     (title, None)]
    return _render("housing_student.html", caller, trail,
                   number=student_number, person=person, gender=(person or {}).get("gender_label", ""),
                   bed=current["bed"], checked_in_at=open_stay["checked_in_at"] if open_stay else None,
                   stays=list(reversed(stays)), can_write=menu.allowed(caller.role, "housing_assign"))


@bp.get("/me")
def mine() -> Response:
    """我的住宿: a student's own 住宿记录 (the same page staff open for them)."""
    caller = auth.require_login()
    _page(caller, "housing_mine")
    return redirect(url_for("housing_web.student", student_number=caller.username))


@bp.get("/residents")
def residents() -> str:
    caller = auth.require_login()
    _page(caller, "housing_residents")
    q = request.args.get("q", "").strip()[:64]
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page"))
    # The dashboard's occupancy bars lead here (issue 9): one building's, or one college's, residents.
    filters: dict[str, Any] = {k: request.args.get(k, "").strip()[:32] for k in ("building", "college")
                               if request.args.get(k, "").strip()}
    if request.args.get("housed") == "1":
        filters["housed"] = True
    result = auth.call("housing", "residents", q, page, per_page, **filters)
    params = {**({"q": q} if q else {}), **{k: ("1" if v is True else v) for k, v in filters.items()}}
    return _render("housing_residents.html", caller, [GROUP, ("住宿查询", None)], q=q, items=result["items"],
                   pagination=Pagination(page, per_page, int(result["total"])), page_sizes=PAGE_SIZES,
                   params=params, filtered=bool(filters))


# -- single changes ---------------------------------------------------------------------------
ACTIONS = {
    "assign": "分配床位", "move": "调整床位", "swap": "互换床位", "check_in": "办理入住", "check_out": "办理退宿",
}


@bp.route("/assign", methods=["GET", "POST"])
def assign() -> str:
    caller = auth.require_login()
    _page(caller, "housing_assign")
    message, error = None, None
    form = request.form if request.method == "POST" else request.args
    number = form.get("student_number", "").strip()
    if request.method == "POST":
        action = form.get("action", "")
        try:
            if action == "assign":
                auth.call("housing", "assign_bed", number, form.get("target", "").strip(),
                          form.get("override_reason") or None)
            elif action == "move":
                auth.call("housing", "move_bed", number, form.get("target", "").strip(),
                          form.get("override_reason") or None)
            elif action == "swap":
                auth.call("housing", "swap_beds", number, form.get("other", "").strip())
            elif action == "check_in":
                auth.call("housing", "check_in", number)
            elif action == "check_out":
                auth.call("housing", "check_out", number)
            else:
                raise Invalid("未知的操作")
            message = f"{ACTIONS[action]}成功"
        except (Invalid, Conflict, NotFound, Forbidden) as exc:
            error = str(exc.args[0]) if exc.args else "操作失败"
    current = history = None
    if number:
        try:
            current = auth.call("housing", "occupancy", number)
            history = auth.call("housing", "bed_history", number)
        except (Invalid, NotFound, Forbidden) as exc:
            error = error or (str(exc.args[0]) if exc.args else "查询失败")
    return _render("housing_assign.html", caller, [GROUP, ("床位分配", None)], number=number, current=current,
                   history=history, message=message, error=error, actions=ACTIONS)


# -- bulk moves with a preview (H3) -------------------------------------------------------------
@bp.route("/bulk", methods=["GET", "POST"])
def bulk() -> str:
    caller = auth.require_login()
    _page(caller, "housing_bulk")
    text = request.form.get("rows", "")
    preview = result = error = None
    if request.method == "POST":
        try:
            rows = _rows_from_text(text)
            if request.form.get("action") == "apply":
                result = auth.call("housing", "move_many", rows)
            else:
                preview = auth.call("housing", "preview_moves", rows)
        except (Invalid, Conflict, NotFound) as exc:
            error = str(exc.args[0]) if exc.args else "操作失败"
            if isinstance(exc, Conflict):
                preview = auth.call("housing", "preview_moves", _rows_from_text(text))
    return _render("housing_bulk.html", caller, [GROUP, ("批量调整", None)], text=text, preview=preview,
                   result=result, error=error)


# -- imports, allocation, check-out ---------------------------------------------------------------
@bp.get("/templates/<kind>.xlsx")
def template(kind: str) -> Response:
    caller = auth.require_login()
    _page(caller, "housing_import")
    names = {"inventory": "宿舍床位导入模板.xlsx", "assignment": "新生床位分配导入模板.xlsx"}
    if kind not in names:
        raise NotFound("模板不存在")
    return xlsx_response(auth.call("housing", "sheet_template", kind), names[kind])


@bp.route("/import", methods=["GET", "POST"])
def import_page() -> str | Response:
    caller = auth.require_login()
    _page(caller, "housing_import")
    outcome = error = None
    kind = request.form.get("kind", "assignment")
    if request.method == "POST":
        try:
            data = uploaded_xlsx_b64(MAX_UPLOAD_MB)
            if kind == "inventory":
                outcome = auth.call("housing", "import_inventory", data)
            else:
                outcome = auth.call("housing", "import_assignments", data, request.form.get("apply") == "1")
            if not outcome["ok"] and request.form.get("download") == "1":
                return xlsx_response(outcome["annotated"], "导入错误标注.xlsx")
        except (Invalid, Conflict, NotFound) as exc:
            error = str(exc.args[0]) if exc.args else "导入失败"
    return _render("housing_import.html", caller, [GROUP, ("导入与分配", None)], outcome=outcome, kind=kind,
                   error=error, allocation=None)


@bp.post("/allocate")
def allocate() -> str:
    caller = auth.require_login()
    _page(caller, "housing_import")
    selection = {k: v for k, v in {
        "entry_year": request.form.get("entry_year", "").strip() or None,
        "college_codes": [c for c in request.form.get("college_codes", "").replace("，", ",").split(",") if c.strip()],
    }.items() if v}
    allocation = error = None
    try:
        allocation = auth.call("housing", "allocate_intake", selection, request.form.get("apply") == "1")
    except (Invalid, Conflict) as exc:
        error = str(exc.args[0]) if exc.args else "分配失败"
    return _render("housing_import.html", caller, [GROUP, ("导入与分配", None)], outcome=None, kind="assignment",
                   error=error, allocation=allocation, selection=selection)


@bp.route("/checkout", methods=["GET", "POST"])
def checkout() -> str:
    caller = auth.require_login()
    _page(caller, "housing_checkout")
    result = error = None
    if request.method == "POST":
        year = request.form.get("entry_year", "").strip()
        numbers = [n for n in request.form.get("student_numbers", "").replace(",", " ").split() if n]
        try:
            selection: dict[str, Any] = {"student_numbers": numbers} if numbers else {"entry_year": year}
            result = auth.call("housing", "check_out_many", selection)
        except (Invalid, Conflict, NotFound) as exc:
            error = str(exc.args[0]) if exc.args else "退宿失败"
    holders = auth.call("housing", "holders_who_left")
    # A revoked leaving whose bed someone else took meanwhile: the student waits for a new bed.
    restore = auth.call("housing", "restore_problems")
    return _render("housing_checkout.html", caller, [GROUP, ("退宿管理", None)], result=result, error=error,
                   holders=holders, restore=restore)


@bp.get("/checkout/holders.xlsx")
def holders_export() -> Response:
    caller = auth.require_login()
    _page(caller, "housing_checkout")
    return xlsx_response(auth.call("housing", "export_holders_who_left"), "离校未退宿名单.xlsx")


# -- reports --------------------------------------------------------------------------------------
@bp.get("/reports")
def reports() -> str:
    caller = auth.require_login()
    _page(caller, "housing_reports")
    return _render("housing_reports.html", caller, [GROUP, ("住宿统计", None)],
                   report=auth.call("housing", "occupancy_report"))


@bp.get("/reports.xlsx")
def report_export() -> Response:
    caller = auth.require_login()
    _page(caller, "housing_reports")
    return xlsx_response(auth.call("housing", "export_report"), "宿舍入住统计.xlsx")
