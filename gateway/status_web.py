"""学籍异动 pages (issue 5): the per-student timeline with the 办理异动, 撤销 and 调班 forms, batch
changes from a workbook (preview → apply), the authority's approvals, the academic calendar
(settings, dry runs, runs), absences and suspected dropouts, and the pending-graduation list
with the beds still held (from housing).

Pages are checked against the menu here; roster checks role, scope and the transition table
again on every call (I6), so the forms only offer what roster would accept.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, request, url_for

from gateway import auth, menu
from gateway.presenters import PAGE_SIZES, Pagination, page_args, status_tag
from gateway.roster_web import long_call
from gateway.security import check_form
from gateway.spreadsheets import SheetStep, keep, kept, preview_or_apply, uploaded_xlsx_b64, xlsx_response
from gateway.web import _page, _render
from services.common import caller as roles
from services.common.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated

log = logging.getLogger(__name__)

bp = Blueprint("status_web", __name__, url_prefix="/roster")

GROUP = ("学籍异动", None)
MAX_UPLOAD_MB = 20
MAX_EVIDENCE_FILES = 5
MAX_EVIDENCE_MB = 5
EVIDENCE_SUFFIXES = (".pdf", ".jpg", ".jpeg", ".png")
# The calendar jobs (R4, R16, R17) in the order of the school year.
JOBS = {
    "welcome": "迎新截止（未报到）",
    "dropout": "缺勤检查（疑似辍学、辍学）",
    "graduation_deadline": "毕业截止（待毕业）",
    "promotion": "升级",
}
# Who may move a student to another class (R9; roster decides which move each may make).
CLASS_MOVERS = frozenset({roles.COUNSELOR, roles.DEPUTY_SECRETARY, roles.STUDENT_AFFAIRS})
USER_ERRORS = (Invalid, Conflict, NotFound, Forbidden)
HOUSING_UNAVAILABLE = "宿舍信息暂不可用"


@bp.before_request
def _csrf() -> None:
    check_form()


@bp.app_template_global()
def menu_allows(role: str, key: str) -> bool:
    """For templates outside this blueprint (the student page links to the timeline)."""
    return menu.allowed(role, key)


def _error_text(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args and exc.args[0] else "操作失败"


def _paged(items: list[dict[str, Any]], q: str, fields: Iterable[str]) -> tuple[list[dict[str, Any]], Pagination]:
    """Search and page a list the service returns whole (lists of one school's cases stay small)."""
    keys = tuple(fields)
    if q:
        items = [i for i in items if any(q in str(i.get(k) or "") for k in keys)]
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page"))
    page = min(page, max(1, -(-len(items) // per_page)))
    pagination = Pagination(page, per_page, len(items))
    start = (page - 1) * per_page
    return items[start:start + per_page], pagination


def _day(text: str, label: str) -> str:
    text = text.strip()
    if text:
        try:
            date.fromisoformat(text)
        except ValueError:
            raise Invalid(f"{label}应为 YYYY-MM-DD 格式的日期") from None
    return text


# -- 异动办理: choose a student ------------------------------------------------------------------


@bp.get("/status")
def index() -> str:
    caller = auth.require_login()
    _page(caller, "status_changes")
    q = request.args.get("q", "").strip()[:64]
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page"))
    result = auth.call("roster", "search_students", q, page, per_page)
    return _render("status_index.html", caller, [GROUP, ("异动办理", None)], q=q, items=result["items"],
                   pagination=Pagination(page, per_page, int(result["total"])), page_sizes=PAGE_SIZES,
                   status_tag=status_tag)


# -- one student: timeline, 办理异动, 撤销, 调班 ---------------------------------------------------


def _evidence_files() -> list[dict[str, str]]:
    """The uploaded evidence as roster takes it; roster checks the files' own signatures again."""
    uploads = [f for f in request.files.getlist("files") if f and f.filename]
    if len(uploads) > MAX_EVIDENCE_FILES:
        raise Invalid(f"证明材料最多 {MAX_EVIDENCE_FILES} 个文件")
    limit = MAX_EVIDENCE_MB * 1024 * 1024
    files = []
    for upload in uploads:
        name = upload.filename or "附件"
        if not name.lower().endswith(EVIDENCE_SUFFIXES):
            raise Invalid(f"证明材料“{name}”应为 PDF、JPEG 或 PNG 文件")
        data = upload.read(limit + 1)
        if len(data) > limit:
            raise Invalid(f"证明材料“{name}”超过 {MAX_EVIDENCE_MB} MB")
        files.append({"filename": name, "data": base64.b64encode(data).decode()})
    return files


def _details(form: Any) -> dict[str, str]:
    details = {
        "discharged_on": _day(form.get("discharged_on", ""), "退役日期"),
        "until": _day(form.get("until", ""), "休学截止日期"),
        "destination": form.get("destination", "").strip()[:200],
        "leave_on": _day(form.get("leave_on", ""), "出境日期"),  # 出国（境）, T3 (issue 8)
    }
    return {k: v for k, v in details.items() if v}


def _apply(student_number: str) -> str:
    form = request.form
    kind = form.get("kind", "")
    if not kind:
        raise Invalid("请选择异动类型")
    result = auth.call("roster", "apply_status_change", student_number, kind,
                       _day(form.get("effective_on", ""), "生效日期"), form.get("reason", "").strip(),
                       form.get("evidence", "").strip(), _evidence_files(), _details(form))
    if result.get("applied"):
        return f"办理成功，学籍状态：{result['status_label']}"
    return f"已提交学籍主管部门审批（申请编号 {result['application_id']}），批准后生效"


def _revoke(_student_number: str) -> str:
    try:
        change_id = int(request.form.get("change_id", ""))
    except ValueError:
        raise Invalid("请选择要撤销的异动") from None
    result = auth.call("roster", "revoke_status_change", change_id, request.form.get("revoke_reason", "").strip())
    return f"已撤销，学籍状态恢复为：{result['status_label']}"


def _move(student_number: str) -> str:
    to_class = request.form.get("to_class", "").strip()
    if not to_class:
        raise Invalid("请填写调入班级代码")
    auth.call("roster", "move_class", student_number, to_class, request.form.get("move_reason", "").strip())
    return f"调班成功，已调入班级 {to_class}"


ACTIONS: dict[str, Callable[[str], str]] = {
    "apply": _apply,
    "revoke": _revoke,
    "move": _move,
}


@bp.route("/status/<student_number>", methods=["GET", "POST"])
def student(student_number: str) -> str:
    caller = auth.require_login()
    _page(caller, "status_changes")
    message = error = None
    action = request.form.get("action", "") if request.method == "POST" else ""
    if action:
        try:
            handler = ACTIONS.get(action)
            if handler is None:
                raise Invalid("未知操作")
            message = handler(student_number)
        except USER_ERRORS as exc:
            error = _error_text(exc)
    calls: dict[str, Any] = {
        "student": ("roster", "get_student", student_number),
        "timeline": ("roster", "status_timeline", student_number),
        "kinds": ("roster", "status_kinds"),
    }
    if caller.role in CLASS_MOVERS:
        calls["moves"] = ("roster", "class_moves", student_number)
    outcomes = auth.rpc().call_many(calls, caller=caller)
    record = outcomes["student"].unwrap()  # NotFound / Forbidden: the page does not exist for this caller
    timeline = outcomes["timeline"].unwrap()
    kinds = outcomes["kinds"].unwrap()
    moves_outcome = outcomes.get("moves")
    moves = moves_outcome.value if moves_outcome is not None and moves_outcome.ok else None
    own_kinds = {k["code"] for k in kinds}
    available = [k for k in kinds if record["status"] in k["from_statuses"]]
    latest = timeline[-1] if timeline else None
    revocable = (latest is not None and latest.get("kind") in own_kinds and not latest.get("revokes_change_id")
                 and not latest.get("revoked_by_change_id"))
    # After a failed submission the form keeps what was typed (files have to be chosen again).
    form = request.form if error and action == "apply" else {}
    return _render("status_student.html", caller,
                   [GROUP, ("异动办理", url_for("status_web.index")), (student_number, None)],
                   record=record, timeline=list(reversed(timeline)), kinds=available, any_kinds=bool(kinds),
                   revocable_id=latest["id"] if revocable and latest else None, can_move=caller.role in CLASS_MOVERS,
                   moves=moves, form=form, message=message, error=error, action=action, status_tag=status_tag,
                   today=date.today().isoformat(), max_files=MAX_EVIDENCE_FILES, max_mb=MAX_EVIDENCE_MB)


@bp.get("/status/attachments/<int:attachment_id>")
def attachment(attachment_id: int) -> Response:
    caller = auth.require_login()
    _page(caller, "status_changes")
    found = auth.call("roster", "status_attachment", attachment_id)
    response = Response(base64.b64decode(found["data"]), mimetype=found["content_type"])
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(found['filename'])}"
    return response


# -- 批量异动: template → upload → preview → 确认执行 --------------------------------------------------


@bp.get("/status/batch/template.xlsx")
def batch_template() -> Response:
    caller = auth.require_login()
    _page(caller, "status_batch")
    result = auth.call("roster", "status_batch_template")
    return xlsx_response(result["content"], result["filename"])


@bp.route("/status/batch", methods=["GET", "POST"])
def batch() -> str:
    """The uploaded workbook stays here between preview and 确认执行 (a token in the form)."""
    caller = auth.require_login()
    _page(caller, "status_batch")
    step, error = SheetStep(), None
    if request.method == "POST":
        try:
            step = preview_or_apply(caller.username, MAX_UPLOAD_MB, lambda c: long_call("preview_status_batch", c),
                                    lambda c: long_call("apply_status_batch", c))
        except USER_ERRORS as exc:
            error = _error_text(exc)
    return _render("status_batch.html", caller, [GROUP, ("批量异动", None)], preview=step.preview,
                   result=step.result, error=error, upload_token=step.upload_token,
                   annotated_token=step.annotated_token)


@bp.get("/status/batch/result/<token>.xlsx")
def batch_result(token: str) -> Response:
    caller = auth.require_login()
    _page(caller, "status_batch")
    return xlsx_response(kept(token, caller.username), "批量异动_错误标注.xlsx")


# -- 异动审批 (K-12: the authority approves) -------------------------------------------------------

APPLICATION_STATES = (("pending", "待审批"), ("approved", "已批准"), ("rejected", "未批准"), ("", "全部"))


@bp.route("/status/applications", methods=["GET", "POST"])
def applications() -> str:
    caller = auth.require_login()
    _page(caller, "status_approvals")
    message = error = None
    if request.method == "POST":
        try:
            approve = request.form.get("approve") == "1"
            result = auth.call("roster", "decide_status_application", int(request.form.get("application_id", "0")),
                               approve, request.form.get("note", "").strip())
            message = f"申请 {result['application_id']} " + ("已批准，异动已生效" if approve else "未批准")
        except ValueError:
            error = "参数无效"
        except USER_ERRORS as exc:
            error = _error_text(exc)
    state = request.args.get("state", "pending")
    q = request.args.get("q", "").strip()[:64]
    items, pagination = _paged(auth.call("roster", "list_status_applications", state), q,
                               ("student_number", "name", "kind_label"))
    return _render("status_applications.html", caller, [GROUP, ("异动审批", None)], items=items, state=state, q=q,
                   states=APPLICATION_STATES, pagination=pagination, page_sizes=PAGE_SIZES, message=message,
                   error=error, can_decide=caller.role == roles.AUTHORITY)


# -- 学籍日历: settings, dry runs, runs ----------------------------------------------------------------


def _setting_value(setting: dict[str, Any]) -> Any:
    key = setting["key"]
    if setting.get("kind") == "kinds":
        return [v for v in request.form.getlist("value") if v] if setting.get("choices") else \
            [v.strip() for v in request.form.get("value", "").replace("，", ",").split(",") if v.strip()]
    if setting.get("kind") == "bool":
        return request.form.get("value") == "1"
    value = request.form.get("value", "").strip()
    if setting.get("kind") == "date" and not value:
        return None
    if not value:
        raise Invalid(f"请填写{setting.get('label') or key}")
    return value


@bp.route("/calendar", methods=["GET", "POST"])
def calendar() -> str:
    caller = auth.require_login()
    _page(caller, "status_calendar")
    message = error = None
    on = request.values.get("on", "").strip()
    job = request.values.get("job", "")
    if request.method == "POST":
        try:
            if request.form.get("action") == "setting":
                settings = {s["key"]: s for s in auth.call("roster", "roster_settings")}
                setting = settings.get(request.form.get("key", ""))
                if setting is None:
                    raise Invalid("未知的设置")
                auth.call("roster", "save_roster_setting", setting["key"], _setting_value(setting))
                message = "保存成功"
            elif request.form.get("action") == "run":
                if job not in JOBS:
                    raise Invalid("未知的日历任务")
                run = long_call("calendar_run", job, _day(on, "执行日期"))
                message = (f"{JOBS[job]}（{run['period']}）已执行过，本次未作任何修改" if run.get("already_ran")
                           else f"{JOBS[job]}（{run['period']}）执行完成，涉及 {run['affected']} 名学生")
            else:
                raise Invalid("未知操作")
        except USER_ERRORS as exc:
            error = _error_text(exc)
    preview = None
    if request.method == "GET" and job:
        try:
            if job not in JOBS:
                raise Invalid("未知的日历任务")
            preview = long_call("calendar_preview", job, _day(on, "执行日期"))
        except USER_ERRORS as exc:
            error = _error_text(exc)
    # A promotion's dry run lists every enrolled student: shown a page at a time, searchable.
    q = request.args.get("q", "").strip()[:64]
    rows, pagination = _paged(preview["rows"] if preview else [], q, ("student_number", "name", "class_code"))
    outcomes = auth.rpc().call_many({"settings": ("roster", "roster_settings"), "runs": ("roster", "calendar_runs")},
                                    caller=caller)
    return _render("status_calendar.html", caller, [GROUP, ("学籍日历", None)],
                   settings=outcomes["settings"].unwrap(), runs=outcomes["runs"].unwrap(), jobs=JOBS, job=job, on=on,
                   preview=preview, rows=rows, q=q, pagination=pagination, page_sizes=PAGE_SIZES, message=message,
                   error=error, can_edit=caller.role == roles.STUDENT_AFFAIRS)


# -- 缺勤登记, 报到, 疑似辍学 ------------------------------------------------------------------------------


def _day_entries(day: str) -> list[dict[str, Any]]:
    form = request.form
    absent = form.getlist("absent")
    if not absent:
        raise Invalid("请勾选缺勤的学生")
    excused, reachable = set(form.getlist("excused")), set(form.getlist("reachable"))
    return [{"student_number": n, "day": day, "excused": n in excused, "reachable": n in reachable,
             "note": form.get(f"note_{n}", "").strip()[:200]} for n in absent]


def _numbers(text: str) -> list[str]:
    return [n for n in text.replace(",", " ").replace("，", " ").split() if n]


@bp.get("/absences/template.xlsx")
def absence_template() -> Response:
    caller = auth.require_login()
    _page(caller, "status_absences")
    result = auth.call("roster", "absence_template")
    return xlsx_response(result["content"], result["filename"])


@bp.route("/absences", methods=["GET", "POST"])
def absences() -> str:
    caller = auth.require_login()
    _page(caller, "status_absences")
    message = error = imported = annotated_token = None
    day = request.values.get("day", "").strip() or date.today().isoformat()
    class_code = request.values.get("class_code", "").strip()
    if request.method == "POST":
        action = request.form.get("action", "")
        try:
            if action == "record":
                result = auth.call("roster", "record_absences", _day_entries(_day(day, "缺勤日期")))
                message = f"已保存 {day} 的缺勤：新增 {result['created']} 人，修改 {result['updated']} 人"
            elif action == "import":
                imported = long_call("import_absences", uploaded_xlsx_b64(MAX_UPLOAD_MB))
                if imported.get("annotated"):
                    annotated_token = keep(caller.username, imported["annotated"])
            elif action == "reported":
                numbers = _numbers(request.form.get("student_numbers", ""))
                if not numbers:
                    raise Invalid("请填写已报到学生的学号")
                result = auth.call("roster", "mark_reported", numbers)
                message = f"已登记报到 {result['marked']} 人"
                if result["already"]:
                    message += f"，{result['already']} 人此前已登记"
            else:
                raise Invalid("未知操作")
        except USER_ERRORS as exc:
            error = _error_text(exc)
    # a class at a time fits on one page by default
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page") or str(PAGE_SIZES[-1]))
    outcomes = auth.rpc().call_many({
        # the day's form: students of the counselor's classes, one page at a time
        "students": ("roster", "search_students", "", page, per_page, class_code),
        "recent": ("roster", "absences", "", class_code),
    }, caller=caller)
    students = outcomes["students"].unwrap()
    recent = outcomes["recent"].unwrap()
    marked = {a["student_number"]: a for a in recent if str(a.get("day")) == day}
    classes = list(caller.scope.ids) if caller.scope.kind == "classes" else []
    return _render("status_absences.html", caller, [GROUP, ("缺勤登记", None)], day=day, class_code=class_code,
                   classes=classes, students=students["items"],
                   pagination=Pagination(page, per_page, int(students["total"])), page_sizes=PAGE_SIZES,
                   marked=marked, recent=recent[:200], imported=imported, annotated_token=annotated_token,
                   message=message, error=error)


@bp.get("/absences/result/<token>.xlsx")
def absence_result(token: str) -> Response:
    caller = auth.require_login()
    _page(caller, "status_absences")
    return xlsx_response(kept(token, caller.username), "缺勤导入_错误标注.xlsx")


@bp.get("/dropouts")
def dropouts() -> str:
    caller = auth.require_login()
    _page(caller, "status_dropouts")
    q = request.args.get("q", "").strip()[:64]
    items, pagination = _paged(auth.call("roster", "suspected_dropouts"), q,
                               ("student_number", "name", "class_code"))
    return _render("status_dropouts.html", caller, [GROUP, ("疑似辍学", None)], items=items, q=q,
                   pagination=pagination, page_sizes=PAGE_SIZES, status_tag=status_tag)


# -- 待毕业名单 (R18) -------------------------------------------------------------------------------------


def beds_of(numbers: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """The beds the students still hold, or None and why when housing cannot say."""
    if not numbers:
        return {}, None
    outcome = auth.rpc().call_many({"beds": ("housing", "beds_held", numbers)}, caller=auth.require_login())["beds"]
    if outcome.ok:
        return outcome.value, None
    if isinstance(outcome.error, Unauthenticated):
        raise outcome.error
    # The list is roster's; housing only adds a column, so any failure of housing's leaves it out.
    log.warning("beds_held failed on the pending-graduation page: %r", outcome.error)
    return None, HOUSING_UNAVAILABLE


@bp.route("/pending-graduations", methods=["GET", "POST"])
def pending_graduations() -> str:
    caller = auth.require_login()
    _page(caller, "status_pending")
    message = error = None
    if request.method == "POST":
        try:
            if request.form.get("action") == "close":
                auth.call("roster", "close_pending_graduation", int(request.form.get("entry_id", "0")),
                          request.form.get("note", "").strip())
                message = "已移出待毕业名单"
            else:
                number = request.form.get("student_number", "").strip()
                if not number:
                    raise Invalid("请填写学号")
                auth.call("roster", "add_pending_graduation", number, request.form.get("reason", "").strip(),
                          _day(request.form.get("expected_on", ""), "预计毕业日期"))
                message = f"已将 {number} 加入待毕业名单"
        except ValueError:
            error = "参数无效"
        except USER_ERRORS as exc:
            error = _error_text(exc)
    state = request.args.get("state", "open")
    q = request.args.get("q", "").strip()[:64]
    items, pagination = _paged(auth.call("roster", "pending_graduations", state), q,
                               ("student_number", "name", "class_code", "reason"))
    beds, beds_notice = beds_of([i["student_number"] for i in items])
    return _render("status_pending.html", caller, [GROUP, ("待毕业名单", None)], items=items, beds=beds,
                   beds_notice=beds_notice, state=state, q=q, pagination=pagination, page_sizes=PAGE_SIZES,
                   message=message, error=error)
