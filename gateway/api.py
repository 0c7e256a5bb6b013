"""JSON API `/api/v1`: thin translations of HTTP requests into RPC calls.

Errors (any view, any cause) come back as `{"error": {"code", "message"}}` with the HTTP
status of `gateway.errors.describe`; the app's error handlers do that.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from gateway import auth
from gateway.health import service_health
from gateway.security import check_api_request
from services.common.errors import Invalid

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_PER_PAGE = 100
MAX_QUERY = 64


@bp.before_request
def _csrf() -> None:
    # Logging in creates the session; there is nothing yet to forge a request with.
    if request.endpoint == "api.login":
        return
    check_api_request()


def _int_arg(name: str, default: int, message: str) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise Invalid(message) from None


def _login_answer(caller: dict[str, Any], must_change_password: bool) -> dict[str, Any]:
    return {
        "username": caller["username"],
        "role": caller["role"],
        "role_label": auth.role_label(caller["role"]),
        "must_change_password": bool(must_change_password),
    }


@bp.post("/session")
def login() -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("请求体必须是 JSON 对象")
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise Invalid("请输入用户名和密码")
    result = auth.sign_in(username.strip(), password, request.remote_addr or "")
    return jsonify(_login_answer(result["caller"], result.get("must_change_password", False)))


@bp.get("/session")
def who_am_i() -> Response:
    caller = auth.require_login()
    return jsonify({
        "username": caller.username,
        "role": caller.role,
        "role_label": auth.role_label(caller.role),
        "scope": {"kind": caller.scope.kind, "ids": list(caller.scope.ids)},
    })


@bp.delete("/session")
def logout() -> Response:
    auth.sign_out()
    return Response(status=204)


@bp.get("/students")
def search_students() -> Response:
    q = request.args.get("q", "").strip()
    page = _int_arg("page", 1, "页码必须是不小于 1 的整数")
    per_page = _int_arg("per_page", 20, f"每页条数必须在 1 到 {MAX_PER_PAGE} 之间")
    if page < 1:
        raise Invalid("页码必须是不小于 1 的整数")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise Invalid(f"每页条数必须在 1 到 {MAX_PER_PAGE} 之间")
    if len(q) > MAX_QUERY:
        raise Invalid(f"查询条件不能超过 {MAX_QUERY} 个字符")
    result = auth.call("roster", "search_students", q, page, per_page)
    return jsonify({
        "items": result["items"],
        "total": result["total"],
        "total_capped": bool(result.get("total_capped")),
        "page": page,
        "per_page": per_page,
    })


@bp.get("/students/<student_number>")
def get_student(student_number: str) -> Response:
    return jsonify(auth.call("roster", "get_student", student_number))


@bp.get("/housing/occupancy/<student_number>")
def occupancy(student_number: str) -> Response:
    return jsonify(auth.call("housing", "occupancy", student_number))


@bp.get("/accounts/<username>")
def get_account(username: str) -> Response:
    return jsonify(auth.call("identity", "get_account", username))


@bp.get("/health")
def health() -> tuple[Response, int]:
    healthy, services = service_health()
    body = {"status": "ok" if healthy else "degraded", "services": services}
    return jsonify(body), 200 if healthy else 503
