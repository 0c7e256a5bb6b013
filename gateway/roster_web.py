"""学籍管理 pages of the student register: Excel import and export (R1), problem records
(查重, R14) with merge (R7), code tables (字典) and the audit chain check.

Pages are checked against the menu here; the roster service checks role and scope again (I6).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, redirect, request, url_for

from gateway import auth
from gateway.security import check_form
from gateway.spreadsheets import (
    SheetStep,
    base64_body,
    keep,
    kept,
    preview_or_apply,
    uploaded_b64,
    uploaded_xlsx_b64,
    xlsx_response,
)
from gateway.web import _page, _render
from services.common.errors import Conflict, Forbidden, Invalid, NotFound

bp = Blueprint("roster_web", __name__, url_prefix="/roster")

MAX_UPLOAD_MB = 40  # a 50,000-row workbook is ~15 MB
LONG_RPC = 900.0  # seconds: a full-year import or export
GROUP = ("学籍管理", None)

@bp.before_request
def _csrf() -> None:
    check_form()


def long_call(method: str, *args: Any) -> Any:
    return auth.long_call("roster", method, *args, timeout=LONG_RPC)


@bp.get("/template.xlsx")
def template() -> Response:
    caller = auth.require_login()
    _page(caller, "roster_import")
    result = auth.call("roster", "import_template")
    return xlsx_response(base64.b64decode(result["content"]), result["filename"])


@bp.route("/import", methods=["GET", "POST"])
def import_page() -> str:
    caller = auth.require_login()
    _page(caller, "roster_import")
    outcome = error = token = None
    if request.method == "POST":
        try:
            outcome = long_call("import_students", uploaded_xlsx_b64(MAX_UPLOAD_MB),
                                request.form.get("valid_only") == "1", request.form.get("update_existing") == "1")
            if outcome.get("annotated"):
                token = keep(caller.username, outcome["annotated"])
        except (Invalid, Conflict, NotFound) as exc:
            error = str(exc.args[0]) if exc.args else "导入失败"
    return _render("roster_import.html", caller, [GROUP, ("学生导入", None)], outcome=outcome, error=error,
                   token=token)


@bp.get("/import/result/<token>.xlsx")
def import_result(token: str) -> Response:
    caller = auth.require_login()
    _page(caller, "roster_import")
    return xlsx_response(kept(token, caller.username), "学生导入_错误标注.xlsx")


@bp.get("/export.xlsx")
def export() -> Response:
    caller = auth.require_login()
    _page(caller, "students")
    result = long_call("export_students", request.args.get("q", ""), request.args.get("class_code", ""),
                       request.args.get("status", ""))
    return xlsx_response(base64.b64decode(result["content"]), result["filename"])


@bp.route("/problems", methods=["GET", "POST"])
def problems() -> str | Response:
    caller = auth.require_login()
    _page(caller, "roster_problems")
    message = error = None
    if request.method == "POST":
        action = request.form.get("action", "")
        try:
            if action == "scan":
                found = auth.call("roster", "scan_duplicates")["found"]
                message = f"查重完成，新发现或更新 {found} 组疑似重复学籍"
            elif action == "merge":
                auth.call("roster", "merge_duplicate", int(request.form["problem_id"]), request.form.get("keep", ""),
                          request.form.get("remove", ""), request.form.get("evidence", ""))
                message = "合并成功"
            elif action == "dismiss":
                auth.call("roster", "dismiss_problem_record", int(request.form["problem_id"]),
                          request.form.get("note", ""))
                message = "已排除"
            elif action == "clearance_reprocess":
                done = auth.call("roster", "reprocess_clearance_problem", int(request.form["event_row"]))
                why = f"（{done['problem']}）" if done["problem"] else ""
                message = f"离校事件已重新处理：{done['state_label']}{why}"
            elif action == "clearance_dismiss":
                auth.call("roster", "dismiss_clearance_problem", int(request.form["event_row"]),
                          request.form.get("note", ""))
                message = "离校事件已人工关闭"
            else:
                raise Invalid("未知操作")
        except (Invalid, Conflict, NotFound, Forbidden, KeyError, ValueError) as exc:
            error = str(exc.args[0]) if isinstance(exc, Invalid | Conflict | NotFound | Forbidden) else "参数无效"
    state = request.args.get("state", "open")
    items = auth.call("roster", "list_problem_records", state)
    # The clearance system's events roster could not apply (unknown student, invalid, conflicting).
    clearance = auth.call("roster", "list_clearance_problems")
    return _render("roster_problems.html", caller, [GROUP, ("问题学籍", None)], items=items, state=state,
                   clearance=clearance, message=message, error=error)


@bp.route("/codes", methods=["GET", "POST"])
def codes() -> str | Response:
    caller = auth.require_login()
    _page(caller, "roster_codes")
    message = error = None
    if request.method == "POST":
        try:
            auth.call("roster", "save_code", request.form.get("table", ""), request.form.get("code", ""),
                      request.form.get("label", ""), request.form.get("active", "1") == "1")
            return redirect(url_for("roster_web.codes", table=request.form.get("table", ""), saved=1))
        except (Invalid, Forbidden) as exc:
            error = str(exc.args[0]) if exc.args else "保存失败"
    if request.args.get("saved"):
        message = "保存成功"
    tables = auth.call("roster", "code_tables")
    selected = request.values.get("table") or next(iter(tables), "")
    return _render("roster_codes.html", caller, [GROUP, ("数据字典", None)], tables=tables, selected=selected,
                   message=message, error=error)


@bp.get("/audit")
def audit_check() -> str:
    caller = auth.require_login()
    _page(caller, "roster_codes")
    report = long_call("verify_audit_chain") if request.args.get("verify") else None
    return _render("roster_audit.html", caller, [GROUP, ("审计链校验", None)], report=report)


# -- the record, change requests, field policies, statistics ----------------------------------


def _error_text(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args else "操作失败"


@bp.get("/me")
def my_record() -> Response:
    caller = auth.require_login()
    _page(caller, "roster_my_record")
    return redirect(url_for("roster_web.record", student_number=caller.username))


@bp.route("/students/<student_number>", methods=["GET", "POST"])
def record(student_number: str) -> str:
    """The full record; staff edit ordinary fields at once, key fields (and students' own
    changes) go to a change request."""
    caller = auth.require_login()
    if caller.role != "student":
        _page(caller, "students")
    message = error = None
    if request.method == "POST":
        values = {k[2:]: v.strip() for k, v in request.form.items() if k.startswith("f_") and v.strip() != ""}
        try:
            if caller.role == "student":
                auth.call("roster", "submit_change_request", student_number, values, request.form.get("note", ""))
                message = "变更申请已提交，待辅导员审核"
            else:
                result = auth.call("roster", "update_student", student_number, values, request.form.get("note", ""))
                message = "修改成功" + ("，关键字段已提交变更申请，待学生处审批" if result["request_id"] else "")
        except (Invalid, Forbidden, Conflict, NotFound) as exc:
            error = _error_text(exc)
    data = auth.call("roster", "student_record", student_number)
    history = []
    if caller.role in ("student_affairs", "academic_affairs", "it_centre"):
        history = auth.call("roster", "student_audit", student_number)
    return _render("roster_record.html", caller, [GROUP, ("学籍信息", None)], record=data, history=history,
                   message=message, error=error)


@bp.route("/requests", methods=["GET", "POST"])
def requests_page() -> str:
    caller = auth.require_login()
    _page(caller, "roster_requests")
    message = error = None
    if request.method == "POST":
        try:
            result = auth.call("roster", "review_change_request", int(request.form.get("request_id", "0")),
                               request.form.get("approve") == "1", request.form.get("note", ""))
            message = f"审核完成：{result['state_label']}"
        except (Invalid, Forbidden, Conflict, NotFound) as exc:
            error = _error_text(exc)
    state = request.args.get("state", "")
    items = auth.call("roster", "list_change_requests", state)
    return _render("roster_requests.html", caller, [GROUP, ("变更审核", None)], items=items, state=state,
                   message=message, error=error)


@bp.route("/policies", methods=["GET", "POST"])
def policies() -> str:
    caller = auth.require_login()
    _page(caller, "roster_codes")
    message = error = None
    if request.method == "POST":
        try:
            auth.call("roster", "set_field_policy", request.form.get("field", ""), request.form.get("student", ""),
                      request.form.get("staff", ""))
            message = "保存成功"
        except (Invalid, Forbidden) as exc:
            error = _error_text(exc)
    return _render("roster_policies.html", caller, [GROUP, ("字段权限", None)],
                   items=auth.call("roster", "field_policies"), message=message, error=error)


@bp.get("/statistics")
def statistics() -> str:
    caller = auth.require_login()
    _page(caller, "roster_statistics")
    by = request.args.get("by", "college")
    error = None
    try:
        result = auth.call("roster", "statistics", by)
    except Invalid as exc:
        result, error = None, _error_text(exc)
    dimensions = [("college", "学院"), ("major", "专业"), ("grade", "年级"), ("class", "班级"), ("gender", "性别"),
                  ("ethnicity", "民族"), ("region", "地区"), ("status", "学籍状态")]
    return _render("roster_statistics.html", caller, [GROUP, ("学籍统计", None)], result=result, by=by,
                   dimensions=dimensions, error=error)


# -- 学号换发 (R3): the mapping sheet 考生号 → 学号, preview then 确认执行 -----------------------------


@bp.get("/numbers/template.xlsx")
def numbers_template() -> Response:
    caller = auth.require_login()
    _page(caller, "roster_numbers")
    result = auth.call("roster", "number_mapping_template")
    return xlsx_response(result["content"], result["filename"])


@bp.route("/numbers", methods=["GET", "POST"])
def numbers() -> str:
    """The uploaded sheet stays here between preview and 确认执行 (a token in the form); the reason
    (the office's document number) is asked for with 确认执行."""
    caller = auth.require_login()
    _page(caller, "roster_numbers")
    step, error = SheetStep(), None
    if request.method == "POST":
        try:
            step = preview_or_apply(
                caller.username, MAX_UPLOAD_MB, lambda c: long_call("preview_number_mapping", c),
                lambda c: long_call("apply_number_mapping", c, request.form.get("reason", "")))
        except (Invalid, Conflict, NotFound, Forbidden) as exc:
            error = _error_text(exc)
    lookup = None
    number = request.args.get("student_number", "").strip()
    if number:
        try:
            lookup = auth.call("roster", "number_changes", number)
        except (NotFound, Forbidden) as exc:
            error = _error_text(exc)
    return _render("roster_numbers.html", caller, [GROUP, ("学号换发", None)], preview=step.preview,
                   result=step.result, error=error, upload_token=step.upload_token,
                   annotated_token=step.annotated_token, lookup=lookup, number=number,
                   reason=request.form.get("reason", ""))


@bp.get("/numbers/result/<token>.xlsx")
def numbers_result(token: str) -> Response:
    caller = auth.require_login()
    _page(caller, "roster_numbers")
    return xlsx_response(kept(token, caller.username), "学号对照_错误标注.xlsx")


# -- 照片 (R15): one student's photo, and a zip of photos named by the rule ---------------------------

MAX_PHOTO_ZIP_MB = 100
MAX_PHOTO_MB = 1  # read at most this of one photo: the service allows 60 KB (R15) and says so
PHOTO_TOO_BIG = "照片须小于 60 KB"
PHOTO_WRITERS = ("student_affairs", "counselor", "deputy_secretary")


def uploaded_photo_zip(body: Mapping[str, Any] | None = None) -> str:
    """The zip of photos as base64: the page's multipart `file`, or an API call's (a multipart `file`, or
    `content` in its JSON `body`), held to the same limit either way."""
    too_big = f"压缩包不能超过 {MAX_PHOTO_ZIP_MB} MB"
    if body is not None and not request.files:
        return base64_body(body.get("content"), MAX_PHOTO_ZIP_MB, not_base64="content 必须是 base64 编码的 zip 压缩包",
                           too_big=too_big)
    return uploaded_b64("file", ".zip", MAX_PHOTO_ZIP_MB, missing="请选择照片压缩包（.zip）",
                        wrong_type="只支持 .zip 压缩包", too_big=too_big)


@bp.get("/students/<student_number>/photo.jpg")
def photo_jpg(student_number: str) -> Response:
    """The photo itself (the service checks who may see it); 404 when there is none."""
    auth.require_login()
    found = auth.call("roster", "photo", student_number)
    response = Response(base64.b64decode(found["content"]), mimetype="image/jpeg")
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["ETag"] = found["sha256"]
    return response


@bp.route("/students/<student_number>/photo", methods=["GET", "POST"])
def photo_page(student_number: str) -> str:
    caller = auth.require_login()
    if caller.role not in PHOTO_WRITERS:
        raise Forbidden("您没有权限上传照片")
    message = error = None
    if request.method == "POST":
        upload = request.files.get("photo")
        try:
            if upload is None or not upload.filename:
                raise Invalid("请选择照片文件（.jpg）")
            data = upload.read(MAX_PHOTO_MB * 1024 * 1024 + 1)
            if len(data) > MAX_PHOTO_MB * 1024 * 1024:
                raise Invalid(PHOTO_TOO_BIG)
            result = auth.call("roster", "upload_photo", student_number, base64.b64encode(data).decode(),
                               upload.filename)
            message = "照片已保存" if result["saved"] else "与现有照片相同，未作更改"
        except (Invalid, Conflict, NotFound, Forbidden) as exc:
            error = _error_text(exc)
    student = auth.call("roster", "get_student", student_number)
    try:
        current = auth.call("roster", "photo", student_number)
    except NotFound:
        current = None
    return _render("roster_photo.html", caller, [GROUP, (student_number, url_for("web.student",
                   student_number=student_number)), ("照片", None)], s=student, current=current,
                   message=message, error=error)


@bp.route("/photos", methods=["GET", "POST"])
def photos_import() -> str:
    caller = auth.require_login()
    _page(caller, "roster_photos")
    result = error = None
    if request.method == "POST":
        try:
            result = long_call("import_photos", uploaded_photo_zip(), request.form.get("valid_only") == "1")
        except (Invalid, Conflict, NotFound, Forbidden) as exc:
            error = _error_text(exc)
    return _render("roster_photos.html", caller, [GROUP, ("照片导入", None)], result=result, error=error)
