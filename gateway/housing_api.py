"""JSON API `/api/v1/housing`: the housing service's reads and bulk moves for scripts and
the report chart. Errors come back as `{"error": {...}}` like the rest of the API."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from gateway import auth
from gateway.security import check_api_request
from services.common.errors import Invalid

bp = Blueprint("housing_api", __name__, url_prefix="/api/v1/housing")


@bp.before_request
def _csrf() -> None:
    check_api_request()


def _body_rows() -> list:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
        raise Invalid("请求体必须是含 rows 列表的 JSON 对象")
    return body["rows"]


@bp.get("/report")
def report() -> Response:
    return jsonify(auth.call("housing", "occupancy_report"))


@bp.get("/buildings")
def buildings() -> Response:
    return jsonify(auth.call("housing", "list_buildings"))


@bp.get("/buildings/<code>")
def building(code: str) -> Response:
    return jsonify(auth.call("housing", "building_rooms", code))


@bp.get("/residents")
def residents() -> Response:
    try:
        page, per_page = int(request.args.get("page", 1)), int(request.args.get("per_page", 20))
    except ValueError:
        raise Invalid("页码和每页条数必须是整数") from None
    return jsonify(auth.call("housing", "residents", request.args.get("q", ""), page, per_page))


@bp.get("/checked-out/<student_number>")
def checked_out(student_number: str) -> Response:
    return jsonify(auth.call("housing", "checked_out", student_number))


@bp.post("/moves/preview")
def preview_moves() -> Response:
    return jsonify(auth.call("housing", "preview_moves", _body_rows()))


@bp.post("/moves")
def move_many() -> Response:
    return jsonify(auth.call("housing", "move_many", _body_rows()))
