"""转学 pages (issue 8): filing a transfer with evidence, the list and the approval queue of each stage
with the working days left, a transfer's stages and every interchange message, the peer institutions
and their keys with the inspection list of refused messages, the working-day calendar and the
deadline settings, and changes of major or study centre inside the institution (T7).

Pages are checked against the menu here; the transfer service checks role, scope and state again on
every call (I6), so the forms only offer what it would accept.
"""

from __future__ import annotations

import base64
import calendar as month_calendar
from datetime import date
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, redirect, request, url_for

from gateway import auth
from gateway.presenters import PAGE_SIZES, Pagination, page_args
from gateway.security import check_form
from gateway.spreadsheets import keep, kept, uploaded_xlsx_b64, xlsx_response
from gateway.status_web import (
    MAX_EVIDENCE_FILES,
    MAX_EVIDENCE_MB,
    USER_ERRORS,
    _error_text,
    _evidence_files,
)
from gateway.web import _page, _render
from services.common import caller as roles
from services.common.caller import Caller
from services.common.errors import Invalid

bp = Blueprint("transfer_web", __name__, url_prefix="/transfers")

GROUP = ("转学", None)
MAX_UPLOAD_MB = 5  # a calendar workbook (a year is a few dozen rows)
LONG_RPC = 120.0  # seconds: a calendar workbook import
DAYS_LEFT_WARNING = 3  # 剩余工作日 shown red at or below this

# Codes come labelled by the services: states and stages with each transfer and the list's `state_options`,
# the rest by `transfer.choices`; gender and ID document types are roster's code tables.
# Who may make unacknowledged messages due at once (重发).
RESENDERS = frozenset({roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS, roles.IT_CENTRE})
# Who approves T7 changes (the service checks the deputy secretary's college).
INTERNAL_DECIDERS = frozenset({roles.DEPUTY_SECRETARY, roles.STUDENT_AFFAIRS})
# The 工作日历 page: student affairs edits everything; an authority only its own deadline days.
CALENDAR_EDITORS = frozenset({roles.STUDENT_AFFAIRS})


@bp.before_request
def _csrf() -> None:
    check_form()


def _pairs(options: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Labelled codes (`transfer.choices`, a roster code table's active codes) as the templates' selects take them."""
    return [(c["code"], c["label"]) for c in options if c.get("active", True)]


def days_left_class(days: Any) -> str:
    """剩余工作日 red at three or fewer (overdue included), else plain."""
    if days is None or days == "":
        return ""
    try:
        return "tag tag-danger" if int(days) <= DAYS_LEFT_WARNING else ""
    except (TypeError, ValueError):
        return ""


def _common() -> dict[str, Any]:
    """What the 转学 templates use beside the service's own labels (transfers, stages and messages)."""
    return {"days_left_class": days_left_class}


def _text(name: str, limit: int = 500) -> str:
    return request.form.get(name, "").strip()[:limit]


def _int_form(name: str, message: str) -> int:
    try:
        return int(request.form.get(name, ""))
    except ValueError:
        raise Invalid(message) from None


# -- 转学申请 (we are the inflow side) -------------------------------------------------------------------


STUDENT_FIELDS = ("national_student_id", "name", "gender", "birth_date", "id_type", "id_number",
                  "outflow_student_number")


def _student_form() -> dict[str, str]:
    """The student's identity as typed (the service checks each field and says which is wrong)."""
    return {key: _text(key, 32) for key in STUDENT_FIELDS}


def _out_of_term_needed(exc: Exception) -> bool:
    """Only the service knows the term windows (T5): the field appears when its error names it."""
    return getattr(exc, "field", None) == "out_of_term_reason"


@bp.route("/new", methods=["GET", "POST"])
def file_page() -> str | Response:
    caller = auth.require_login()
    _page(caller, "transfer_file")
    error = None
    asks_reason = False
    if request.method == "POST":
        try:
            peer_code = _text("peer_code", 10)
            if not peer_code:
                raise Invalid("请选择转出学校")
            view = auth.call("transfer", "file_transfer", _student_form(), peer_code, _text("transfer_kind", 16),
                             _text("reason"),
                             _text("target_class_code", 16), _evidence_files(), _text("out_of_term_reason"))
            return redirect(url_for("transfer_web.detail", transfer_id=view["transfer_id"], notice="filed"))
        except USER_ERRORS as exc:
            error = _error_text(exc)
            asks_reason = _out_of_term_needed(exc)
    outcomes = auth.rpc().call_many({"peers": ("transfer", "list_peers"), "choices": ("transfer", "choices"),
                                     "codes": ("roster", "code_tables")}, caller=caller)
    # Without the peers list (the service refused or is away) the code is typed instead of chosen; so are
    # gender and ID document type without roster's code tables.
    peers = [p for p in outcomes["peers"].value if p["active"]] if outcomes["peers"].ok else None
    codes = outcomes["codes"].value if outcomes["codes"].ok else None
    kinds = _pairs(outcomes["choices"].value["transfer_kinds"]) if outcomes["choices"].ok else []
    form = request.form if request.method == "POST" else {}
    show_out_of_term = bool(form.get("out_of_term_reason")) or asks_reason
    return _render("transfer_file.html", caller, [GROUP, ("转学申请", None)], form=form, error=error, peers=peers,
                   transfer_kinds=kinds, genders=_pairs(codes["gender"]["codes"]) if codes else None,
                   id_types=_pairs(codes["id_type"]["codes"]) if codes else None,
                   show_out_of_term=show_out_of_term, max_files=MAX_EVIDENCE_FILES, max_mb=MAX_EVIDENCE_MB)


# -- 转学列表 and 转学审批 ----------------------------------------------------------------------------------


def _list_args() -> tuple[str, str, str, int, int]:
    direction = request.args.get("direction", "")
    state = request.args.get("state", "")
    direction = direction[:16]  # the service knows the directions; an unknown one is refused (`transfers`)
    state = state[:32]  # the service knows the states; an unknown one gets the whole list (`transfers`)
    q = request.args.get("q", "").strip()[:64]
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page"))
    return direction, state, q, page, per_page


@bp.get("")
def transfers() -> str:
    caller = auth.require_login()
    _page(caller, "transfer_list")
    direction, state, q, page, per_page = _list_args()
    try:
        result = auth.call("transfer", "list_transfers", direction, state, q, page, per_page)
    except Invalid:
        if not state and not direction:
            raise
        direction = state = ""  # a filter the service does not know (an old link): the list unfiltered
        result = auth.call("transfer", "list_transfers", direction, state, q, page, per_page)
    params = {k: v for k, v in (("direction", direction), ("state", state), ("q", q)) if v}
    states = [("", "全部"), *((o["state"], o["state_label"]) for o in result["state_options"])]
    return _render("transfer_list.html", caller, [GROUP, ("转学列表", None)], items=result["items"],
                   pagination=Pagination(page, per_page, int(result["total"])), page_sizes=PAGE_SIZES,
                   direction=direction, state=state, q=q, params=params,
                   directions=[("", "全部"), *_pairs(auth.call("transfer", "choices")["directions"])], states=states,
                   **_common())


def _decide(transfer_id: str) -> str:
    stage = _text("stage", 32)
    approve = request.form.get("approve") == "1"
    reason = _text("reason")
    if not approve and not reason:
        raise Invalid("不同意时请填写理由")
    view = auth.call("transfer", "decide_transfer", transfer_id, stage, approve, reason)
    return f"{_decided_label(view, stage)}审核：" + ("已同意" if approve else "不同意，转学终止")


def _decided_label(view: dict[str, Any], stage: str) -> str:
    """The decided stage as the service labels it in the transfer's stages (the transfer has moved on)."""
    labels = [st["stage_label"] for st in view.get("stages", []) if st.get("stage") == stage]
    return labels[-1] if labels else stage


@bp.route("/approvals", methods=["GET", "POST"])
def approvals() -> str:
    """One queue per stage the caller's role decides, each with 同意 / 不同意 (with reason)."""
    caller = auth.require_login()
    _page(caller, "transfer_approvals")
    message = error = None
    if request.method == "POST":
        try:
            message = _decide(_text("transfer_id", 64))
        except USER_ERRORS as exc:
            error = _error_text(exc)
    q = request.args.get("q", "").strip()[:64]
    own = auth.call("transfer", "my_stages")
    calls = {f"{o['direction']}:{o['stage']}": ("transfer", "list_transfers", o["direction"], o["stage"], q, 1, 100)
             for o in own}
    outcomes = auth.rpc().call_many(calls, caller=caller) if calls else {}
    queues = []
    for o in own:
        result = outcomes[f"{o['direction']}:{o['stage']}"].unwrap()
        queues.append({"direction": o["direction"], "stage": o["stage"], "label": o["stage_label"],
                       "direction_label": o["direction_label"], "items": result["items"], "total": result["total"]})
    return _render("transfer_approvals.html", caller, [GROUP, ("转学审批", None)], queues=queues, q=q,
                   message=message, error=error, **_common())


# -- one transfer: stages, messages, evidence, cancel ---------------------------------------------------


def _cancel(transfer_id: str) -> str:
    reason = _text("cancel_reason")
    if not reason:
        raise Invalid("请填写撤销原因")
    auth.call("transfer", "cancel_transfer", transfer_id, reason)
    return "已撤销转学"


def _resend(transfer_id: str) -> str:
    result = auth.call("transfer", "resend_now", transfer_id)
    return _resent_text(result)


def _resent_text(result: dict[str, Any]) -> str:
    due = int(result.get("due") or 0)
    return f"已安排立即重发 {due} 条未确认的消息" if due else "没有未确认的消息需要重发"


NOTICES = {"filed": "转学申请已提交，等待转入地学籍主管部门审批"}


@bp.route("/<transfer_id>", methods=["GET", "POST"])
def detail(transfer_id: str) -> str:
    caller = auth.require_login()
    _page(caller, "transfer_list")
    message = NOTICES.get(request.args.get("notice", ""))
    error = None
    action = request.form.get("action", "") if request.method == "POST" else ""
    if action:
        try:
            if action == "decide":
                message = _decide(transfer_id)
            elif action == "cancel":
                message = _cancel(transfer_id)
            elif action == "resend":
                message = _resend(transfer_id)
            else:
                raise Invalid("未知操作")
        except USER_ERRORS as exc:
            error = _error_text(exc)
    view = auth.call("transfer", "get_transfer", transfer_id)
    unsettled = any(m["direction"] == "out" and m["state"] in ("pending", "sent") for m in view.get("messages", []))
    return _render("transfer_detail.html", caller,
                   [GROUP, ("转学列表", url_for("transfer_web.transfers")), (view["student"]["name"] or transfer_id,
                                                                         None)],
                   t=view, message=message, error=error, can_decide=view["may_decide"], cancellable=view["may_cancel"],
                   can_resend=unsettled and caller.role in RESENDERS, **_common())


@bp.get("/<transfer_id>/evidence/<int:file_id>")
def evidence(transfer_id: str, file_id: int) -> Response:
    caller = auth.require_login()
    _page(caller, "transfer_list")
    found = auth.call("transfer", "transfer_evidence", transfer_id, file_id)
    response = Response(base64.b64decode(found["data"]), mimetype=found["content_type"])
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(found['filename'])}"
    return response


# -- 对端单位与密钥 -----------------------------------------------------------------------------------------


@bp.route("/peers", methods=["GET", "POST"])
def peers() -> str:
    """The generated secret is in this one answer only (never kept here, the service shows it once)."""
    caller = auth.require_login()
    _page(caller, "transfer_peers")
    message = error = warning = None
    secret: dict[str, Any] | None = None
    action = request.form.get("action", "") if request.method == "POST" else ""
    if action:
        try:
            if action == "save_peer":
                code = _text("code", 10)
                auth.call("transfer", "save_peer", code, _text("name", 100), _text("province", 2),
                          _text("authority_code", 16), request.form.get("active", "1") == "1")
                message = f"单位 {code} 已保存"
            elif action == "add_key":
                peer_code, key_id = _text("peer_code", 10), _text("key_id", 64)
                result = auth.call("transfer", "add_peer_key", peer_code, key_id, _text("secret", 200))
                message = f"已为单位 {result['peer_code']} 添加密钥 {result['key_id']}"
                if result.get("secret"):
                    secret = result
            elif action == "retire_key":
                peer_code, key_id = _text("peer_code", 10), _text("key_id", 64)
                result = auth.call("transfer", "retire_peer_key", peer_code, key_id)
                message = f"单位 {peer_code} 的密钥 {key_id} 已停用"
                warning = result.get("warning")
            elif action == "resend":
                message = _resent_text(auth.call("transfer", "resend_now", ""))
            else:
                raise Invalid("未知操作")
        except USER_ERRORS as exc:
            error = _error_text(exc)
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page"))
    outcomes = auth.rpc().call_many({"peers": ("transfer", "list_peers"),
                                     "problems": ("transfer", "interchange_problems", page, per_page)}, caller=caller)
    problems = outcomes["problems"].unwrap()
    form = request.form if error and action == "save_peer" else {}
    return _render("transfer_peers.html", caller, [GROUP, ("对端单位与密钥", None)], peers=outcomes["peers"].unwrap(),
                   problems=problems["items"], pagination=Pagination(page, per_page, int(problems["total"])),
                   page_sizes=PAGE_SIZES, secret=secret, warning=warning, message=message, error=error, form=form,
                   **_common())


# -- 工作日历 and deadline settings -------------------------------------------------------------------------


def _year() -> int:
    try:
        year = int(request.values.get("year") or date.today().year)
    except ValueError:
        year = date.today().year
    return min(max(year, 2000), 2100)


def _months(year: int, overrides: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Twelve month grids (weeks from Monday) with each override marked."""
    marked = {str(o["day"]): o for o in overrides}
    grid = month_calendar.Calendar(firstweekday=0)
    months = []
    for month in range(1, 13):
        weeks = []
        for week in grid.monthdatescalendar(year, month):
            cells = []
            for day in week:
                if day.month != month:
                    cells.append(None)
                    continue
                override = marked.get(day.isoformat())
                kind = ("holiday" if not override["is_workday"] else "workday") if override else \
                    ("weekend" if day.weekday() >= 5 else "")
                cells.append({"day": day.day, "iso": day.isoformat(), "kind": kind,
                              "note": (override or {}).get("note") or ""})
            weeks.append(cells)
        months.append({"month": month, "weeks": weeks})
    return months


def _setting_value(kind: str, label: str) -> Any:
    """A setting from its form, by the kind the service gives it: working days, {authority: days}
    lines, term windows as date pairs, or an authority code. The service validates it again."""
    value = request.form.get("value", "").strip()
    if kind == "days":
        try:
            return int(value)
        except ValueError:
            raise Invalid(f"{label}应为整数") from None
    if kind == "days_by_authority":
        by_authority: dict[str, int] = {}
        for line in value.splitlines():
            line = line.strip()
            if not line:
                continue
            code, _, days = line.replace("：", ":").replace("，", ":").replace(",", ":").partition(":")
            try:
                by_authority[code.strip()] = int(days)
            except ValueError:
                raise Invalid(f"“{line}”应为“主管部门代码:工作日数”") from None
        return by_authority
    if kind == "windows":
        starts, ends = request.form.getlist("start"), request.form.getlist("end")
        return [{"start": a.strip(), "end": b.strip()} for a, b in zip(starts, ends, strict=False)
                if a.strip() or b.strip()]
    return value


def _own_deadline(caller: Caller, current: dict[str, Any]) -> str:
    """An authority sets the deadline of its own code only (the service refuses any other change)."""
    code = _text("authority_code", 16)
    if code not in caller.scope.ids:
        raise Invalid("只能设置本部门的审核期限")
    days = _int_form("days", "审核期限应为整数")
    by_authority = {**(current.get("deadline_days_by_authority") or {}), code: days}
    auth.call("transfer", "save_transfer_setting", "deadline_days_by_authority", by_authority)
    return f"主管部门 {code} 的审核期限已设为 {days} 个工作日"


CALENDAR_ACTIONS = ("save_day", "delete_day", "import", "setting", "own_deadline")


@bp.route("/calendar", methods=["GET", "POST"])
def calendar() -> str:
    caller = auth.require_login()
    _page(caller, "transfer_calendar")
    year = _year()
    message = error = imported = annotated_token = None
    action = request.form.get("action", "") if request.method == "POST" else ""
    if action:
        try:
            if action not in CALENDAR_ACTIONS:
                raise Invalid("未知操作")
            if action == "save_day":
                saved = auth.call("transfer", "save_calendar_day", _text("day", 10),
                                  request.form.get("is_workday") == "1", _text("note", 100))
                message = f"{saved['day']} 已保存为" + ("调休上班日" if saved["is_workday"] else "节假日")
            elif action == "delete_day":
                deleted = auth.call("transfer", "delete_calendar_day", _text("day", 10))
                message = f"已删除 {deleted['day']} 的设置"
            elif action == "import":
                imported = auth.long_call("transfer", "import_calendar", uploaded_xlsx_b64(MAX_UPLOAD_MB),
                                          timeout=LONG_RPC)
                if imported["ok"]:
                    message = (f"导入成功：新增 {imported['created']} 天，修改 {imported['updated']} 天，"
                               f"未变 {imported['unchanged']} 天")
                elif imported.get("annotated"):
                    annotated_token = keep(caller.username, imported["annotated"])
            else:
                settings = {row["key"]: row for row in auth.call("transfer", "transfer_settings")}
                if action == "own_deadline":
                    message = _own_deadline(caller, {k: row["value"] for k, row in settings.items()})
                else:
                    setting = settings.get(_text("key", 64))
                    if setting is None:
                        raise Invalid("未知的设置")
                    auth.call("transfer", "save_transfer_setting", setting["key"],
                              _setting_value(setting["kind"], setting["label"]))
                    message = f"“{setting['label']}”已保存"
        except USER_ERRORS as exc:
            error = _error_text(exc)
    outcomes = auth.rpc().call_many({"days": ("transfer", "calendar_days", year),
                                     "settings": ("transfer", "transfer_settings")}, caller=caller)
    days = outcomes["days"].unwrap()
    settings = outcomes["settings"].unwrap()
    values = {row["key"]: row["value"] for row in settings}
    own_codes = list(caller.scope.ids) if caller.role == roles.AUTHORITY else []
    return _render("transfer_calendar.html", caller, [GROUP, ("工作日历", None)], year=year, days=days,
                   months=_months(year, days["overrides"]), settings=settings, values=values, own_codes=own_codes,
                   can_edit=caller.role in CALENDAR_EDITORS, imported=imported, annotated_token=annotated_token,
                   message=message, error=error)


@bp.get("/calendar/template.xlsx")
def calendar_template() -> Response:
    caller = auth.require_login()
    _page(caller, "transfer_calendar")
    result = auth.call("transfer", "calendar_template")
    return xlsx_response(result["content"], result["filename"])


@bp.get("/calendar/result/<token>.xlsx")
def calendar_result(token: str) -> Response:
    caller = auth.require_login()
    _page(caller, "transfer_calendar")
    return xlsx_response(kept(token, caller.username), "工作日历导入_错误标注.xlsx")


# -- 校内转专业 (T7) -----------------------------------------------------------------------------------------


def _decides_internal(caller: Caller, change: dict[str, Any]) -> bool:
    """同意/不同意 only for whom the change waits on: student affairs, or the awaited college's deputy."""
    if change.get("state") not in ("pending_left", "pending_joined") or caller.role not in INTERNAL_DECIDERS:
        return False
    return caller.role == roles.STUDENT_AFFAIRS or (caller.scope.kind == "college"
                                                    and change.get("awaiting_unit") in caller.scope.ids)


@bp.route("/internal", methods=["GET", "POST"])
def internal() -> str:
    caller = auth.require_login()
    _page(caller, "transfer_internal")
    message = error = None
    action = request.form.get("action", "") if request.method == "POST" else ""
    if action:
        try:
            if action == "file":
                number, kind = _text("student_number", 20), _text("kind", 16)
                if not number:
                    raise Invalid("请填写学号")
                result = auth.call("transfer", "file_internal_change", number, kind, _text("to_class_code", 16),
                                   _text("reason"))
                message = f"申请已提交（编号 {result['id']}），等待调出单位审核"
            elif action == "decide":
                approve = request.form.get("approve") == "1"
                note = _text("note", 200)
                if not approve and not note:
                    raise Invalid("不同意时请填写理由")
                auth.call("transfer", "decide_internal_change", _int_form("change_id", "参数无效"), approve, note)
                message = "已同意" if approve else "已不同意，申请终止"
            else:
                raise Invalid("未知操作")
        except USER_ERRORS as exc:
            error = _error_text(exc)
    choices = auth.call("transfer", "choices")
    states = [("", "全部"), *_pairs(choices["internal_states"])]
    state = request.args.get("state", "")
    if state not in dict(states):
        state = ""
    q = request.args.get("q", "").strip()[:64]
    items = auth.call("transfer", "list_internal_changes", state)
    if q:
        items = [i for i in items if any(q in str(i.get(k) or "") for k in ("student_number", "name", "reason"))]
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page"))
    pagination = Pagination(min(page, max(1, -(-len(items) // per_page))), per_page, len(items))
    start = (pagination.page - 1) * per_page
    form = request.form if error and action == "file" else {}
    return _render("transfer_internal.html", caller, [GROUP, ("校内转专业", None)], items=items[start:start + per_page],
                   pagination=pagination, page_sizes=PAGE_SIZES, state=state, q=q, states=states,
                   kinds=_pairs(choices["internal_kinds"]), form=form, message=message, error=error, action=action,
                   decides=lambda change: _decides_internal(caller, change))
