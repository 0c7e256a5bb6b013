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
from gateway.spreadsheets import SheetStep, kept, preview_or_apply, xlsx_response
from gateway.web import _page, _render
from services.common import caller as roles
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
    error, batch = None, None
    if request.method == "POST":
        try:
            decision = "return" if request.form.get("decision") == "return" else "approve"
            if request.form.get("action") == "batch":
                batch = _review_batch(decision, request.form.get("reason", "").strip())
            else:
                auth.call("aid", "review", int(request.form.get("application_id", "0") or 0), decision,
                          request.form.get("reason", ""))
                return redirect(url_for("aid_web.reviews", done=decision))
        except (Invalid, Conflict, NotFound, Forbidden, ValueError) as exc:
            error = _error(exc)
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page"))
    queue = auth.call("aid", "review_queue", page, per_page)
    return _render("aid_reviews.html", caller, [GROUP, ("资助审核", None)], queue=queue, error=error,
                   done=request.args.get("done"), pagination=Pagination(page, per_page, int(queue["total"])),
                   page_sizes=PAGE_SIZES, batch=batch)


MAX_BATCH = 200  # one page of the queue at most


def _review_batch(decision: str, reason: str) -> dict[str, Any]:
    """批量审核: the ticked applications through `aid.review_many`; each one's outcome for the page."""
    try:
        ids = list(dict.fromkeys(int(i) for i in request.form.getlist("ids")))
    except ValueError:
        raise Invalid("申请编号不正确") from None
    if not ids:
        raise Invalid("请先勾选要审核的申请")
    if len(ids) > MAX_BATCH:
        raise Invalid(f"一次最多审核 {MAX_BATCH} 条申请")
    if decision == "return" and not reason:
        raise Invalid("退回时必须填写原因")
    result = auth.call("aid", "review_many", ids, decision, reason)
    refused = {int(r["id"]): r["message"] for r in result["refused"]}
    label = "已退回" if decision == "return" else "已通过"
    return {"decision": decision, "done": result["done"], "refused": len(refused),
            "outcomes": [{"id": i, "ok": i not in refused, "message": refused.get(i, label)} for i in ids]}


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
                "places": request.form.get("places") or None, "funds": request.form.get("funds") or None})
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
    # A bar of the dashboard's aid chart leads here with its programme (issue 9).
    programme = request.args.get("programme_code", "").strip()[:32]
    result = auth.call("aid", "aided_register", year, page, per_page, *([programme] if programme else []))
    return _render("aid_registers.html", caller, [GROUP, ("受助学生库", None)], year=year, result=result,
                   check=check, paid=paid, error=error, programme_code=programme,
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


# -- 困难认定导入: template → upload → preview → 确认导入 (all or nothing) --------------------------------

IMPORT_MAX_MB = 20
LONG_RPC = 300.0  # seconds: a whole school's identifications


def _long_call(method: str, *args: Any) -> Any:
    return auth.long_call("aid", method, *args, timeout=LONG_RPC)


@bp.get("/identifications/template.xlsx")
def identification_template() -> Response:
    caller = auth.require_login()
    _page(caller, "aid_identify_import")
    result = auth.call("aid", "identification_template")
    return xlsx_response(result["content"], result["filename"])


@bp.route("/identifications", methods=["GET", "POST"])
def identifications() -> str:
    """The uploaded workbook stays here between preview and 确认导入 (a token in the form)."""
    caller = auth.require_login()
    _page(caller, "aid_identify_import")
    step, error = SheetStep(), None
    if request.method == "POST":
        try:
            step = preview_or_apply(caller.username, IMPORT_MAX_MB,
                                    lambda c: _long_call("preview_identifications", c),
                                    lambda c: _long_call("import_identifications", c))
        except (Invalid, Conflict, NotFound, Forbidden) as exc:
            error = _error(exc)
    return _render("aid_identify_import.html", caller, [GROUP, ("困难认定导入", None)], preview=step.preview,
                   result=step.result, error=error, upload_token=step.upload_token,
                   annotated_token=step.annotated_token)


@bp.get("/identifications/result/<token>.xlsx")
def identification_result(token: str) -> Response:
    caller = auth.require_login()
    _page(caller, "aid_identify_import")
    return xlsx_response(kept(token, caller.username), "困难认定导入_错误标注.xlsx")


# -- 资助项目: the programmes' rules, edited by the aid operator (save_programme) ----------------------

KIND_LABELS = {"scholarship": "奖学金", "grant": "助学金", "loan": "助学贷款", "work_study": "勤工助学",
               "waiver": "学费减免", "emergency": "临时困难补助", "green_channel": "绿色通道"}
INT_FIELDS = {"amount": "固定金额", "max_amount": "金额上限", "max_amount_postgraduate": "研究生金额上限",
              "min_year": "最低年级", "max_rank_percent": "成绩排名要求", "instalments": "发放期数"}
REQUIRED_INTS = ("min_year", "instalments")


def _programme_form(levels: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The posted programme as `save_programme` takes it, and each field's Chinese error (shown beside it)."""
    form = request.form
    data: dict[str, Any] = {"code": form.get("code", "").strip().upper(), "name": form.get("name", "").strip(),
                            "kind": form.get("kind", ""), "payer": form.get("payer", "").strip(),
                            "requires_need": form.get("requires_need") == "1", "active": form.get("active") == "1",
                            "min_need_level": form.get("min_need_level") or None}
    errors: dict[str, str] = {}
    for key, label in INT_FIELDS.items():
        text = form.get(key, "").strip()
        data[key] = None
        if not text:
            if key in REQUIRED_INTS:
                errors[key] = f"请填写{label}"
            continue
        try:
            data[key] = int(text)
        except ValueError:
            errors[key] = f"{label}须为整数"
    tiers: dict[str, int] = {}
    for level in levels:
        text = form.get(f"tier_{level}", "").strip()
        if text:
            try:
                tiers[level] = int(text)
            except ValueError:
                errors[f"tier_{level}"] = f"“{level}”档金额须为整数"
    data["tiers"] = tiers
    return data, errors


@bp.route("/programmes", methods=["GET", "POST"])
def programmes() -> str | Response:
    caller = auth.require_login()
    _page(caller, "aid_programmes")
    can_edit = caller.role == roles.AID_OPERATOR
    programmes = auth.call("aid", "list_programmes")
    levels = auth.call("aid", "need_levels")["needy"]
    editing, posted, error, field_errors = None, None, None, {}
    if request.method == "POST":
        if not can_edit:
            raise Forbidden("只有资助中心经办人可以修改资助项目")
        posted, field_errors = _programme_form(levels)
        original = request.form.get("original_code", "")
        editing = original or "__new__"
        if original:
            posted["code"] = original  # the code names the programme: it is never renamed here
        elif any(p["code"] == posted["code"] for p in programmes):
            field_errors["code"] = f"项目代码 {posted['code']} 已存在，请在上方修改该项目"
        if field_errors:
            error = "请改正标红的项"
        else:
            try:
                saved = auth.call("aid", "save_programme", posted)
                return redirect(url_for("aid_web.programmes", saved=saved["code"]) + f"#p-{saved['code']}")
            except (Invalid, Conflict, Forbidden) as exc:
                error = _error(exc)
    return _render("aid_programmes.html", caller, [GROUP, ("资助项目", None)], programmes=programmes, levels=levels,
                   kinds=KIND_LABELS, can_edit=can_edit, editing=editing, posted=posted, error=error,
                   field_errors=field_errors, saved=request.args.get("saved"))
