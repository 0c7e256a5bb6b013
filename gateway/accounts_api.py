"""JSON API for accounts and grants: `/api/v1/accounts`, `/api/v1/grants`, `/api/v1/me/...`; staff import
(`GET /accounts/import/template`, `POST /accounts/import` with a multipart `file` or JSON {content}) and
initial passwords (`POST /accounts/initial-passwords` {class_code}: issued once, never cached).

Thin translations into identity RPCs; identity checks role and scope (I6). `GET
/api/v1/accounts/<username>` stays in `gateway.api`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from gateway import auth
from gateway.security import check_api_request
from gateway.spreadsheets import api_workbook
from services.common.errors import Invalid

bp = Blueprint("accounts_api", __name__, url_prefix="/api/v1")
STAFF_IMPORT_MAX_MB = 5  # as the import page


@bp.before_request
def _csrf() -> None:
    # Every route here needs a signed-in caller: 401 before any check of the request (400/404).
    auth.require_login()
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


@bp.get("/accounts/import/template")
def staff_template() -> Response:
    return jsonify({"filename": "教职工账号导入模板.xlsx", "content": auth.call("identity", "staff_template")})


@bp.post("/accounts/import")
def import_staff() -> Response:
    """All or nothing, checked cell by cell: {ok, imported…} or {ok: false, errors, annotated}."""
    return jsonify(auth.call("identity", "import_staff", api_workbook(STAFF_IMPORT_MAX_MB, {} if request.files
                                                                     else _body())))


@bp.post("/accounts/initial-passwords")
def initial_passwords() -> Response:
    """The caller's students without a password get a one-time initial one, returned only this once."""
    class_code = _body().get("class_code") or None
    response = jsonify(auth.call("identity", "issue_initial_passwords", class_code))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.patch("/accounts/<username>")
def edit_account(username: str) -> Response:
    return jsonify(auth.call("identity", "edit_account", username, _body().get("display_name")))


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
