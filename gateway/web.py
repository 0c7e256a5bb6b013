"""The Chinese web UI: login, home, student list, student page, service status."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from gateway import auth, menu
from gateway import home as home_items
from gateway.health import labelled, service_health
from gateway.presenters import PAGE_SIZES, Pagination, page_args, status_tag
from gateway.rpc import Outcome, ServiceUnavailable, service_label
from gateway.security import check_form
from services.common.caller import Caller
from services.common.errors import Forbidden, NotFound, Unauthenticated

log = logging.getLogger(__name__)

bp = Blueprint("web", __name__)

NOTICES = {
    "initial_password": "您正在使用初始密码，为了账号安全，请尽快修改密码。",
    "logged_out": "您已退出登录。",
}


@bp.before_request
def _csrf() -> None:
    check_form()


def _page(caller: Caller, key: str) -> None:
    """The gateway's own check: pages outside the role's menu do not exist for it."""
    if not menu.allowed(caller.role, key):
        raise Forbidden("您没有权限访问该页面")


def _render(template: str, caller: Caller | None, crumbs: list[tuple[str, str | None]],
            **context: Any) -> str:
    return render_template(
        template,
        caller=caller,
        role_label=auth.role_label(caller.role) if caller else "",
        menu_groups=menu.groups_for(caller.role) if caller else [],
        crumbs=crumbs,
        **context,
    )


def _safe_next(target: str | None) -> str:
    """Only paths on this site, so the login form cannot be used to redirect elsewhere."""
    if not target:
        return url_for("web.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("web.home")
    return target


# -- login / logout ------------------------------------------------------------------------


@bp.get("/login")
def login_form() -> str:
    return render_template("login.html", error=None, username="",
                           next=request.args.get("next", ""),
                           notice=NOTICES.get(request.args.get("notice", "")))


@bp.post("/login")
def login() -> str | Response:
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    target = request.form.get("next", "")
    error = None
    if not username or not password:
        error = "请输入用户名和密码"
    else:
        try:
            result = auth.sign_in(username, password, request.remote_addr or "")
        except Unauthenticated as exc:
            # Identity words it: one message for a wrong name or password, or the lockout.
            error = str(exc.args[0]) if exc.args else "用户名或密码错误"
        except ServiceUnavailable as exc:
            error = exc.message
        else:
            if result.get("must_change_password"):
                return redirect(url_for("web.home", notice="initial_password"))
            return redirect(_safe_next(target))
    return render_template("login.html", error=error, username=username, next=target,
                           notice=None)


@bp.post("/logout")
def logout() -> Response:
    try:
        auth.sign_out()
    except ServiceUnavailable as exc:
        # The browser is logged out already; identity's session expires on its own.
        log.warning("logout not recorded by identity: %s", exc)
    return redirect(url_for("web.login_form", notice="logged_out"))


# -- pages -----------------------------------------------------------------------------------


@bp.get("/")
def home() -> str:
    caller = auth.require_login()
    entries = [e for e in menu.entries_for(caller.role) if e.key != "home"]
    return _render("home.html", caller, [("首页", None)], entries=entries,
                   notice=NOTICES.get(request.args.get("notice", "")),
                   home=home_items.gather(auth.rpc(), caller))


STUDENT_FILTERS = ("college_code", "grade", "gender", "ethnicity")


@bp.get("/students")
def students() -> str:
    caller = auth.require_login()
    _page(caller, "students")
    q = request.args.get("q", "").strip()[:64]
    page, per_page = page_args(request.args.get("page"), request.args.get("per_page"))
    # The dashboard's enrolment bars lead here with their filter (issue 9); sent only when set.
    filters: dict[str, Any] = {name: request.args.get(name, "").strip()[:16] for name in STUDENT_FILTERS
                               if request.args.get(name, "").strip()}
    if request.args.get("counted") == "1":
        filters["counted"] = True
    result = auth.call("roster", "search_students", q, page, per_page, **filters)
    pagination = Pagination(page, per_page, int(result["total"]), bool(result.get("total_capped")))
    params = {**({"q": q} if q else {}), **{k: ("1" if v is True else v) for k, v in filters.items()}}
    return _render("students.html", caller, [("学籍管理", None), ("学生名单", None)],
                   q=q, items=result["items"], pagination=pagination, page_sizes=PAGE_SIZES,
                   status_tag=status_tag, params=params, filtered=bool(filters))


@bp.get("/me")
def my_record() -> Response:
    caller = auth.require_login()
    _page(caller, "my_record")
    # Students log in with their student number (I1).
    return redirect(url_for("web.student", student_number=caller.username))


@dataclass
class Part:
    """One service's share of a page: its data, or why it is missing."""

    value: Any = None
    notice: str | None = None
    unavailable: bool = False


def _part(outcome: Outcome, what: str, service: str) -> Part:
    if outcome.ok:
        return Part(value=outcome.value)
    error = outcome.error
    if isinstance(error, Unauthenticated):
        raise error
    if isinstance(error, ServiceUnavailable):
        log.warning("part of a page unavailable", extra={"fields": {
            "service": error.service, "reason": error.reason}})
        return Part(notice=f"{error.message}，{what}暂时无法显示。", unavailable=True)
    if isinstance(error, Forbidden):
        return Part(notice=f"您无权查看{what}。")
    if isinstance(error, NotFound):
        return Part(notice=f"未找到{what}。")
    log.error("%s failed on the student page: %r", service, error)
    return Part(notice=f"{service_label(service)}服务返回错误，{what}暂时无法显示。",
                unavailable=True)


@bp.get("/students/<student_number>")
def student(student_number: str) -> str:
    caller = auth.require_login()
    outcomes = auth.rpc().call_many(
        {
            "student": ("roster", "get_student", student_number),
            "bed": ("housing", "occupancy", student_number),
            "account": ("identity", "get_account", student_number),
        },
        caller=caller,
    )
    record = outcomes["student"]
    # The record decides whether the page exists for this caller at all.
    if isinstance(record.error, NotFound | Forbidden):
        raise record.error
    parts = {
        "student": _part(record, "学籍信息", "roster"),
        "bed": _part(outcomes["bed"], "宿舍床位信息", "housing"),
        "account": _part(outcomes["account"], "账号信息", "identity"),
    }
    if record.ok:  # 曾用学号 (R3) and the photo (R15): left out quietly when roster cannot say
        extras = auth.rpc().call_many({"extras": ("roster", "student_extras", student_number)}, caller=caller)
        parts["extras"] = Part(value=extras["extras"].value if extras["extras"].ok else None)
    back = ("学生名单", url_for("web.students")) if menu.allowed(caller.role, "students") \
        else ("我的学籍", None)
    return _render("student.html", caller, [("学籍管理", None), back, (student_number, None)],
                   student_number=student_number, parts=parts, status_tag=status_tag,
                   notices=[p.notice for p in parts.values() if p.unavailable and p.notice])


@bp.get("/system/health")
def health() -> str:
    caller = auth.require_login()
    _page(caller, "health")
    healthy, services = service_health()
    return _render("health.html", caller, [("系统监控", None), ("服务状态", None)],
                   healthy=healthy, rows=labelled(services))
