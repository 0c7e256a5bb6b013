"""资助管理 pages: apply (student), review queues per level, needy register, quotas, registers, reports.

Every page calls the aid service with the signed-in caller; the service enforces roles and scopes (A5),
so these pages only choose what to show.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, redirect, request, url_for

from gateway import auth
from gateway.presenters import PAGE_SIZES, Pagination, page_args
from gateway.security import check_form
from gateway.spreadsheets import xlsx_response
from gateway.web import _page, _render
from services.common.errors import Conflict, Forbidden, Invalid, NotFound

bp = Blueprint("aid_web", __name__, url_prefix="/aid")
GROUP = ("资助管理", None)
REPORT_NAMES = {"family": "家庭经济困难学生认定信息", "aided": "学生资助信息"}


@bp.before_request
def _csrf() -> None:
    check_form()


def _year() -> str:
    return request.values.get("year", "").strip() or current_academic_year()


def current_academic_year(today: date | None = None) -> str:
    """The academic year starts on 1 September (the default year of every aid page)."""
    today = today or date.today()
    start = today.year if today.month >= 9 else today.year - 1
    return f"{start}-{start + 1}"


def _error(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args else "操作失败"


@bp.route("/apply", methods=["GET", "POST"])
def apply() -> str | Response:
    caller = auth.require_login()
    _page(caller, "aid_apply")
    year, error = _year(), None
    if request.method == "POST":
        try:
            auth.call("aid", "apply", {
                "student_number": caller.scope.ids[0] if caller.scope.ids else "",
                "programme_code": request.form.get("programme_code", ""), "academic_year": year,
                "requested_amount": request.form.get("requested_amount") or None,
                "rank_percent": request.form.get("rank_percent") or None,
                "statement": request.form.get("statement", "")})
            return redirect(url_for("aid_web.apply", year=year, saved=1))
        except (Invalid, Conflict, NotFound) as exc:
            error = _error(exc)
    return _render("aid_apply.html", caller, [GROUP, ("资助申请", None)], year=year, error=error,
                   saved=request.args.get("saved"), programmes=auth.call("aid", "list_programmes"),
                   mine=auth.call("aid", "my_aid"))


@bp.route("/reviews", methods=["GET", "POST"])
def reviews() -> str | Response:
    caller = auth.require_login()
    _page(caller, "aid_reviews")
    error = None
    if request.method == "POST":
        try:
            decision = "return" if request.form.get("decision") == "return" else "approve"
            auth.call("aid", "review", int(request.form.get("application_id", "0") or 0), decision,
                      request.form.get("reason", ""))
            return redirect(url_for("aid_web.reviews", done=decision))
        except (Invalid, Conflict, NotFound, Forbidden, ValueError) as exc:
            error = _error(exc)
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page"))
    queue = auth.call("aid", "review_queue", page, per_page)
    return _render("aid_reviews.html", caller, [GROUP, ("资助审核", None)], queue=queue, error=error,
                   done=request.args.get("done"), pagination=Pagination(page, per_page, int(queue["total"])),
                   page_sizes=PAGE_SIZES)


@bp.get("/applications/<int:application_id>")
def application(application_id: int) -> str:
    caller = auth.require_login()
    if not any(_allowed(caller, key) for key in ("aid_reviews", "aid_apply", "aid_registers")):
        raise Forbidden("您没有权限访问该页面")
    return _render("aid_application.html", caller, [GROUP, ("申请详情", None)],
                   app=auth.call("aid", "get_application", application_id))


def _allowed(caller: Any, key: str) -> bool:
    try:
        _page(caller, key)
    except Forbidden:
        return False
    return True


@bp.route("/needy", methods=["GET", "POST"])
def needy() -> str | Response:
    caller = auth.require_login()
    _page(caller, "aid_needy")
    year, error = _year(), None
    if request.method == "POST":
        try:
            auth.call("aid", "identify_needy", {
                "student_number": request.form.get("student_number", "").strip(), "academic_year": year,
                "level": request.form.get("level", ""), "reasons": request.form.get("reasons", ""),
                "evidence": [e for e in request.form.get("evidence", "").replace("，", ",").split(",") if e.strip()],
                "flags": request.form.getlist("flags"), "id_number": request.form.get("id_number", ""),
                "income_per_capita": request.form.get("income_per_capita") or None})
            return redirect(url_for("aid_web.needy", year=year, saved=1))
        except (Invalid, Conflict, NotFound, Forbidden) as exc:
            error = _error(exc)
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page"))
    level = request.args.get("level", "")
    result = auth.call("aid", "needy_register", year, page, per_page, level)
    return _render("aid_needy.html", caller, [GROUP, ("困难认定", None)], year=year, level=level, result=result,
                   flags=result["flags"], error=error, saved=request.args.get("saved"),
                   can_identify=caller.role in ("counselor", "deputy_secretary", "aid_operator"),
                   pagination=Pagination(page, per_page, int(result["total"])), page_sizes=PAGE_SIZES)


@bp.route("/quotas", methods=["GET", "POST"])
def quotas() -> str | Response:
    caller = auth.require_login()
    _page(caller, "aid_quotas")
    year, error = _year(), None
    programmes = auth.call("aid", "list_programmes")
    code = request.values.get("programme_code") or (programmes[0]["code"] if programmes else "")
    if request.method == "POST":
        try:
            auth.call("aid", "allocate_quota", {
                "programme_code": code, "academic_year": year, "level": request.form.get("level", ""),
                "college_code": request.form.get("college_code", "").strip(),
                "class_code": request.form.get("class_code", "").strip(),
                "places": request.form.get("places", ""), "funds": request.form.get("funds") or None})
            return redirect(url_for("aid_web.quotas", year=year, programme_code=code, saved=1))
        except (Invalid, Conflict, NotFound, Forbidden) as exc:
            error = _error(exc)
    return _render("aid_quotas.html", caller, [GROUP, ("名额分配", None)], year=year, code=code,
                   programmes=programmes, quotas=auth.call("aid", "list_quotas", code, year), error=error,
                   saved=request.args.get("saved"))


@bp.route("/registers", methods=["GET", "POST"])
def registers() -> str:
    caller = auth.require_login()
    _page(caller, "aid_registers")
    year, error, check, paid = _year(), None, None, None
    if request.method == "POST":
        try:
            if request.form.get("what") == "pay":
                paid = auth.call("aid", "pay_instalments", request.form.get("on_date", "") or date.today().isoformat())
            else:
                check = auth.call("aid", "consistency_check", year)
        except (Invalid, Conflict, Forbidden) as exc:
            error = _error(exc)
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page"))
    result = auth.call("aid", "aided_register", year, page, per_page)
    return _render("aid_registers.html", caller, [GROUP, ("受助学生库", None)], year=year, result=result,
                   check=check, paid=paid, error=error,
                   pagination=Pagination(page, per_page, int(result["total"])), page_sizes=PAGE_SIZES)


@bp.route("/reports", methods=["GET", "POST"])
def reports() -> str:
    caller = auth.require_login()
    _page(caller, "aid_reports")
    year, error, exported, submitted = _year(), None, None, None
    kind = request.values.get("kind", "family")
    if request.method == "POST":
        try:
            if request.form.get("what") == "submit":
                submitted = auth.call("aid", "submit_national", kind, year)
            else:
                exported = auth.call("aid", "national_export", kind, year)
        except (Invalid, Conflict, Forbidden) as exc:
            error = _error(exc)
    return _render("aid_reports.html", caller, [GROUP, ("资助报表", None)], year=year, kind=kind,
                   names=REPORT_NAMES, summary=auth.call("aid", "aid_summary", year), exported=exported,
                   submitted=submitted, error=error)


@bp.get("/reports/<kind>.xlsx")
def report_file(kind: str) -> Response:
    caller = auth.require_login()
    _page(caller, "aid_reports")
    if kind not in REPORT_NAMES:
        raise NotFound("报表不存在")
    year = _year()
    result = auth.call("aid", "national_export", kind, year)
    if not result["ok"]:
        raise Conflict(f"报表有 {result['error_count']} 处未通过模板校验，请在资助报表页查看")
    return xlsx_response(result["file"], result["filename"])
