"""JSON API for accounts and grants: `/api/v1/accounts`, `/api/v1/grants`, `/api/v1/me/...`.

Thin translations into identity RPCs; identity checks role and scope (I6). `GET
/api/v1/accounts/<username>` stays in `gateway.api`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from gateway import auth
from gateway.security import check_api_request
from services.common.errors import Invalid

bp = Blueprint("accounts_api", __name__, url_prefix="/api/v1")


@bp.before_request
def _csrf() -> None:
    check_api_request()


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.data:
        return {}
    if not isinstance(body, dict):
        raise Invalid("请求体必须是 JSON 对象")
    return body


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    try:
        return int(raw) if raw not in (None, "") else default
    except ValueError:
        raise Invalid(f"参数 {name} 必须是整数") from None


# -- accounts --------------------------------------------------------------------------------


@bp.get("/accounts")
def search_accounts() -> Response:
    active = {"true": True, "false": False}.get(request.args.get("active", ""))
    return jsonify(auth.call("identity", "search_accounts", request.args.get("q", ""),
                             _int_arg("page", 1), _int_arg("per_page", 20), active))


@bp.post("/accounts")
def create_account() -> tuple[Response, int]:
    body = _body()
    result = auth.call("identity", "create_account", body.get("username"), body.get("display_name"),
                       body.get("role"), body.get("scope_kind"), body.get("scope_ids", []), body.get("password"))
    return jsonify(result), 201


@bp.post("/accounts/<username>/disable")
def disable_account(username: str) -> Response:
    return jsonify(auth.call("identity", "disable_account", username, _body().get("reason", "")))


@bp.post("/accounts/<username>/enable")
def enable_account(username: str) -> Response:
    return jsonify(auth.call("identity", "enable_account", username))


@bp.post("/accounts/<username>/unlock")
def unlock_account(username: str) -> Response:
    return jsonify(auth.call("identity", "unlock_account", username))


@bp.post("/accounts/<username>/password-reset")
def reset_password(username: str) -> Response:
    return jsonify(auth.call("identity", "reset_password", username))


@bp.delete("/accounts/<username>/sessions")
def force_logout(username: str) -> Response:
    return jsonify(auth.call("identity", "force_logout", username))


@bp.get("/accounts/<username>/grants")
def list_grants(username: str) -> Response:
    return jsonify(auth.call("identity", "list_grants", username))


@bp.get("/login-log")
def login_log() -> Response:
    return jsonify(auth.call("identity", "login_log", request.args.get("q", ""),
                             _int_arg("page", 1), _int_arg("per_page", 20)))


# -- grants ----------------------------------------------------------------------------------


@bp.post("/grants")
def grant() -> tuple[Response, int]:
    body = _body()
    result = auth.call("identity", "grant", body.get("username"), body.get("role"), body.get("scope_kind"),
                       body.get("scope_ids", []))
    return jsonify(result), 201


@bp.delete("/grants/<int:grant_id>")
def revoke_grant(grant_id: int) -> Response:
    return jsonify(auth.call("identity", "revoke_grant", grant_id))


# -- own account -------------------------------------------------------------------------------


@bp.get("/me/sessions")
def my_sessions() -> Response:
    return jsonify(auth.call("identity", "my_sessions"))


@bp.delete("/me/sessions/<ref>")
def end_my_session(ref: str) -> Response:
    return jsonify(auth.call("identity", "end_my_session", ref))


@bp.get("/me/logins")
def my_logins() -> Response:
    return jsonify(auth.call("identity", "my_logins", _int_arg("limit", 50)))


@bp.post("/me/password")
def change_password() -> Response:
    body = _body()
    return jsonify(auth.call("identity", "change_password", body.get("old_password"), body.get("new_password")))


@bp.post("/me/role")
def switch_role() -> Response:
    return jsonify(auth.call("identity", "switch_role", _body().get("role")))
