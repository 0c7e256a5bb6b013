"""账号 pages: forced password change, 个人中心 (own account, sessions, login history),
account administration (search, create, disable/enable, reset with a one-time password,
grants, staff import), initial-password sheets for counselors, and the login log.

Menu checks here are the gateway's half of I6; identity checks role and scope again.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, redirect, request, session, url_for

from gateway import auth, print_web
from gateway.presenters import PAGE_SIZES, Pagination, page_args
from gateway.security import check_form
from gateway.spreadsheets import uploaded_xlsx_b64, xlsx_response
from gateway.web import _page, _render
from services.common.caller import ROLE_LABELS
from services.common.errors import Conflict, Forbidden, Invalid

bp = Blueprint("accounts", __name__)

MAX_UPLOAD_MB = 5
GROUP = ("系统管理", None)
# Until the password is changed a session may do only this (I3: first login, reset, expiry).
OPEN_WHILE_CHANGE_DUE = {"accounts.change_password", "web.logout", "web.login", "web.login_form", "static",
                         "api.login", "api.logout", "api.who_am_i", "accounts_api.change_password"}
SCOPE_KIND_LABELS = {"self": "本人", "classes": "班级", "college": "学院", "institution": "全校",
                     "area": "管辖区域", "none": "无"}
GRANTABLE = ("counselor", "deputy_secretary", "student_affairs", "academic_affairs", "it_centre",
             "housing_centre", "aid_operator", "aid_auditor")
SCOPE_OF_ROLE = {"counselor": "classes", "deputy_secretary": "college"}


@bp.before_request
def _csrf() -> None:
    check_form()


@bp.before_app_request
def _password_change_due() -> Response | None:
    """A session whose password must change sees only the change page (API: 403)."""
    if request.endpoint in OPEN_WHILE_CHANGE_DUE or not session.get(auth.SESSION_KEY):
        return None
    if auth.current_caller() is None or not g.get("must_change_password"):
        return None
    if request.path.startswith("/api/"):
        raise Forbidden("请先修改密码")
    return redirect(url_for("accounts.change_password"))


def scope_label(scope: dict[str, Any]) -> str:
    kind = SCOPE_KIND_LABELS.get(scope.get("kind", ""), scope.get("kind", ""))
    ids = scope.get("ids") or []
    return f"{kind}：{'、'.join(ids)}" if ids else kind


def _ids(text: str) -> list[str]:
    return [p for p in text.replace("，", ",").replace("、", ",").replace(" ", ",").split(",") if p]


# -- password ------------------------------------------------------------------------------


@bp.route("/password/change", methods=["GET", "POST"])
def change_password() -> str | Response:
    caller = auth.require_login()
    error = None
    if request.method == "POST":
        old, new, again = (request.form.get(k, "") for k in ("old_password", "new_password", "confirm"))
        if new != again:
            error = "两次输入的新密码不一致"
        else:
            try:
                auth.call("identity", "change_password", old, new)
            except Invalid as exc:
                error = str(exc.args[0]) if exc.args else "密码不符合要求"
            else:
                g.must_change_password = False
                return redirect(url_for("accounts.my_account", done="password"))
    due = bool(g.get("must_change_password"))
    return _render("password_change.html", caller, [("个人中心", None), ("修改密码", None)], error=error, due=due)


# -- 个人中心 ---------------------------------------------------------------------------------


@bp.get("/me/account")
def my_account() -> str:
    caller = auth.require_login()
    outcomes = auth.rpc().call_many({
        "account": ("identity", "get_account", caller.username),
        "grants": ("identity", "list_grants", caller.username),
        "sessions": ("identity", "my_sessions"),
        "logins": ("identity", "my_logins", 20),
    }, caller=caller)
    for outcome in outcomes.values():
        if not outcome.ok:
            raise outcome.error  # type: ignore[misc]
    grants = outcomes["grants"].value["items"]
    return _render("me_account.html", caller, [("个人中心", None)], account=outcomes["account"].value,
                   grants=grants, roles=sorted({gr["role"] for gr in grants}),
                   sessions=outcomes["sessions"].value["items"], logins=outcomes["logins"].value["items"],
                   scope_label=scope_label, role_labels=ROLE_LABELS, done=request.args.get("done"))


@bp.post("/me/sessions/end")
def end_my_session() -> Response:
    auth.call("identity", "end_my_session", request.form.get("ref", ""))
    return redirect(url_for("accounts.my_account", done="session"))


@bp.post("/me/role")
def switch_role() -> Response:
    auth.call("identity", "switch_role", request.form.get("role", ""))
    return redirect(url_for("web.home"))


# -- account administration ------------------------------------------------------------------


def _list_args() -> dict[str, Any]:
    q = request.args.get("q", "").strip()[:64]
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page"))
    return {"q": q, "page": page, "per_page": per_page}


@bp.get("/accounts")
def accounts() -> str:
    caller = auth.require_login()
    _page(caller, "accounts")
    args = _list_args()
    result = auth.call("identity", "search_accounts", args["q"], args["page"], args["per_page"])
    return _render("accounts.html", caller, [GROUP, ("账号管理", None)], q=args["q"], items=result["items"],
                   pagination=Pagination(args["page"], args["per_page"], int(result["total"])),
                   page_sizes=PAGE_SIZES, scope_label=scope_label, admin=caller.role == "student_affairs",
                   notice=request.args.get("notice"))


@bp.route("/accounts/new", methods=["GET", "POST"])
def create_account() -> str | Response:
    caller = auth.require_login()
    _page(caller, "accounts_admin")
    error, form = None, request.form
    if request.method == "POST":
        role = form.get("role", "")
        kind = SCOPE_OF_ROLE.get(role, "institution")
        try:
            auth.call("identity", "create_account", form.get("username", "").strip(), form.get("display_name", ""),
                      role, kind, _ids(form.get("scope_ids", "")) if kind != "institution" else [],
                      form.get("password", ""))
        except (Invalid, Conflict, Forbidden) as exc:
            error = str(exc.args[0]) if exc.args else "新增失败"
        else:
            return redirect(url_for("accounts.accounts", q=form.get("username", ""), notice="新增成功"))
    return _render("accounts_new.html", caller, [GROUP, ("账号管理", url_for("accounts.accounts")), ("新增账号", None)],
                   error=error, form=form, roles=[(r, ROLE_LABELS[r]) for r in GRANTABLE])


def _action(method: str, *args: Any, notice: str) -> Response:
    auth.call("identity", method, *args)
    return redirect(url_for("accounts.accounts", q=args[0], notice=notice))


@bp.post("/accounts/<username>/edit")
def edit(username: str) -> Response:
    return _action("edit_account", username, request.form.get("display_name", ""), notice="修改成功")


@bp.post("/accounts/<username>/disable")
def disable(username: str) -> Response:
    return _action("disable_account", username, request.form.get("reason", "") or "学生处停用", notice="停用成功")


@bp.post("/accounts/<username>/enable")
def enable(username: str) -> Response:
    return _action("enable_account", username, notice="启用成功")


@bp.post("/accounts/<username>/unlock")
def unlock(username: str) -> Response:
    auth.call("identity", "unlock_account", username)
    return redirect(request.form.get("back") == "logins" and url_for("accounts.login_log", q=username)
                    or url_for("accounts.accounts", q=username, notice="解锁成功"))


@bp.post("/accounts/<username>/logout")
def force_logout(username: str) -> Response:
    if request.form.get("back") == "online":
        auth.call("identity", "force_logout", username)
        return redirect(url_for("accounts.online"))
    return _action("force_logout", username, notice="已强制下线")


@bp.post("/accounts/<username>/reset")
def reset(username: str) -> str:
    caller = auth.require_login()
    result = auth.call("identity", "reset_password", username)
    return _render("password_reset_done.html", caller, [GROUP, ("账号管理", url_for("accounts.accounts")),
                                                        ("重置密码", None)], account=result)


@bp.route("/accounts/<username>/grants", methods=["GET", "POST"])
def grants(username: str) -> str:
    caller = auth.require_login()
    _page(caller, "accounts")
    error = None
    if request.method == "POST":
        role = request.form.get("role", "")
        kind = SCOPE_OF_ROLE.get(role, "institution")
        # A multiple select sends one value per unit; the text box (no org tree yet) a list.
        ids = [i for value in request.form.getlist("scope_ids") for i in _ids(value)]
        try:
            auth.call("identity", "grant", username, role, kind, ids if kind != "institution" else [])
        except (Invalid, Conflict, Forbidden) as exc:
            error = str(exc.args[0]) if exc.args else "授权失败"
    result = auth.call("identity", "list_grants", username)
    grantable = GRANTABLE if caller.role == "student_affairs" else ("counselor",)
    units = [u for u in auth.call("identity", "org_units")["items"] if u["kind"] in ("college", "class")]
    if caller.role != "student_affairs":  # a deputy secretary grants only classes of their college
        units = [u for u in units if u["kind"] == "class" and u["college_code"] in caller.scope.ids]
    return _render("accounts_grants.html", caller, [GROUP, ("账号管理", url_for("accounts.accounts")),
                                                    (f"{username} 的授权", None)],
                   account=result, items=result["items"], error=error, scope_label=scope_label,
                   roles=[(r, ROLE_LABELS[r]) for r in grantable], role_labels=ROLE_LABELS,
                   colleges=[u for u in units if u["kind"] == "college"],
                   classes=[u for u in units if u["kind"] == "class"])


@bp.post("/grants/<int:grant_id>/revoke")
def revoke(grant_id: int) -> Response:
    result = auth.call("identity", "revoke_grant", grant_id)
    return redirect(url_for("accounts.grants", username=result["username"]))


# -- staff import and initial passwords --------------------------------------------------------


@bp.get("/accounts/import/template.xlsx")
def staff_template() -> Response:
    auth.require_login()
    return xlsx_response(auth.call("identity", "staff_template"), "教职工账号导入模板.xlsx")


@bp.route("/accounts/import", methods=["GET", "POST"])
def import_staff() -> str | Response:
    caller = auth.require_login()
    _page(caller, "accounts_admin")
    result = None
    if request.method == "POST":
        result = auth.call("identity", "import_staff", uploaded_xlsx_b64(MAX_UPLOAD_MB))
        if not result["ok"] and request.form.get("annotated"):
            return xlsx_response(result["annotated"], "导入错误标注.xlsx")
    return _render("accounts_import.html", caller, [GROUP, ("账号管理", url_for("accounts.accounts")),
                                                    ("导入教职工", None)], result=result)


@bp.route("/accounts/initial-passwords", methods=["GET", "POST"])
def initial_passwords() -> str | Response:
    caller = auth.require_login()
    _page(caller, "initial_passwords")
    if request.method == "POST":
        class_code = request.form.get("class_code", "").strip() or None
        if request.form.get("format") == "pdf":  # the same one-time issue, printed as slips to cut
            return print_web.password_slips(caller, class_code)
        data = auth.call("identity", "initial_password_sheet", class_code)
        return xlsx_response(data["sheet"], f"学生初始密码_{class_code or '全部'}.xlsx")
    return _render("accounts_initial.html", caller, [GROUP, ("学生初始密码", None)],
                   classes=list(caller.scope.ids) if caller.scope.kind == "classes" else [])


# -- online users and login log --------------------------------------------------------------------------------


@bp.get("/system/logins")
def login_log() -> str:
    caller = auth.require_login()
    _page(caller, "login_log")
    args = _list_args()
    result = auth.call("identity", "login_log", args["q"], args["page"], args["per_page"])
    return _render("accounts_logins.html", caller, [("系统监控", None), ("登录日志", None)], q=args["q"],
                   items=result["items"], page_sizes=PAGE_SIZES,
                   pagination=Pagination(args["page"], args["per_page"], int(result["total"])))



@bp.get("/system/online")
def online() -> str:
    caller = auth.require_login()
    _page(caller, "online")
    items = auth.call("identity", "online_sessions")["items"]
    return _render("accounts_online.html", caller, [("系统监控", None), ("在线用户", None)], items=items,
                   role_labels=ROLE_LABELS)
