"""JSON API of the org tree (组织机构): `GET /api/v1/roster/org-units` (the tree in the caller's scope with
on-campus counts), `PUT` (`{"units": [...]}`: create or change units, all or nothing), `DELETE .../<code>`
(an empty unit). The roster service checks roles, scope and every rule (domain/org_tree.py)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from gateway import auth
from gateway.security import check_api_request
from services.common.errors import Invalid

bp = Blueprint("org_api", __name__, url_prefix="/api/v1/roster/org-units")


@bp.before_request
def _checks() -> None:
    # Every route here needs a signed-in caller: 401 before any check of the request (400/404).
    auth.require_login()
    check_api_request()


@bp.get("")
def list_units() -> Response:
    return jsonify(auth.call("roster", "list_org_units"))


@bp.put("")
def save_units() -> Response:
    body = request.get_json(silent=True)
    units = body.get("units") if isinstance(body, dict) else None
    if not isinstance(units, list) or not units or not all(isinstance(u, dict) for u in units):
        raise Invalid("请求体应为 {\"units\": [组织单位, …]}（至少一个）", "units")
    return jsonify(auth.call("roster", "upsert_org_units", units))


@bp.delete("/<code>")
def delete_unit(code: str) -> Response:
    return jsonify(auth.call("roster", "delete_org_unit", code))
