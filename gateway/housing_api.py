"""JSON API `/api/v1/housing`: the housing service's reads, bulk moves and inventory writes
(H1) for scripts and the report chart. Errors come back as `{"error": {...}}` like the rest
of the API; the housing service decides who may write (the housing centre).

Inventory writes (bodies are JSON objects):
- `PUT /campuses/<code>` {name} → {code, name}
- `PUT /buildings/<code>` {name, gender_policy: M|F|mixed, campus_code?, floors?} → the building
- `PUT /buildings/<code>/rooms/<room_no>` {capacity, floor?, room_type?, fee?, college_code?, beds?} → the room;
  the whole room is replaced (an optional field left out is cleared), `beds` adds that many new beds
- `POST /beds` {beds: [{building_code, building_name, gender_policy, room_no, capacity, bed_no}]} → {created} (201);
  beds already there are skipped, all or nothing
- `DELETE /beds/<label>` → {deleted}: only a bed nobody ever slept in
- `POST /allocations/rooms` {rooms: [{building_code, room_no}], college_code} / `POST /allocations/beds`
  {labels: [...], college_code} → {allocated, college_code}; `college_code: null` means any college
- `POST /inventory/import` multipart `file` or {content: base64 .xlsx} → {ok, errors, imported} or
  {ok: false, errors, annotated: base64 .xlsx}
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from gateway import auth
from gateway.security import check_api_request
from gateway.spreadsheets import api_workbook
from services.common.errors import Invalid

bp = Blueprint("housing_api", __name__, url_prefix="/api/v1/housing")

MAX_UPLOAD_MB = 10


@bp.before_request
def _csrf() -> None:
    # Every route here needs a signed-in caller: 401 before any check of the request (400/404).
    auth.require_login()
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


# -- inventory writes (H1) ------------------------------------------------------------------------
def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("请求体必须是 JSON 对象")
    return body


def _college(body: dict[str, Any]) -> Any:
    # Required but nullable: leaving it out must not silently free rooms from their college.
    if "college_code" not in body:
        raise Invalid("请填写 college_code（不限学院时填 null）")
    return body["college_code"]


@bp.get("/campuses")
def campuses() -> Response:
    return jsonify(auth.call("housing", "list_campuses"))


@bp.put("/campuses/<code>")
def save_campus(code: str) -> Response:
    return jsonify(auth.call("housing", "save_campus", code, _body().get("name")))


@bp.put("/buildings/<code>")
def save_building(code: str) -> Response:
    body = _body()
    return jsonify(auth.call("housing", "save_building", {
        "code": code, "name": body.get("name"), "gender_policy": body.get("gender_policy"),
        "campus_code": body.get("campus_code"), "floors": body.get("floors")}))


@bp.put("/buildings/<code>/rooms/<room_no>")
def save_room(code: str, room_no: str) -> Response:
    body = _body()
    return jsonify(auth.call("housing", "save_room", {
        **{k: body.get(k) for k in ("capacity", "floor", "room_type", "fee", "college_code")},
        "building_code": code, "room_no": room_no, "beds": body.get("beds", 0)}))


@bp.post("/beds")
def create_beds() -> tuple[Response, int]:
    beds = _body().get("beds")
    if not isinstance(beds, list):
        raise Invalid("请求体必须是含 beds 列表的 JSON 对象")
    return jsonify(auth.call("housing", "create_beds", beds)), 201


@bp.delete("/beds/<label>")
def delete_bed(label: str) -> Response:
    return jsonify(auth.call("housing", "delete_bed", label))


@bp.post("/allocations/rooms")
def allocate_rooms() -> Response:
    body = _body()
    return jsonify(auth.call("housing", "allocate_rooms", body.get("rooms"), _college(body)))


@bp.post("/allocations/beds")
def allocate_beds() -> Response:
    body = _body()
    return jsonify(auth.call("housing", "allocate_beds", body.get("labels"), _college(body)))


@bp.post("/inventory/import")
def import_inventory() -> Response:
    content = api_workbook(MAX_UPLOAD_MB, {} if request.files else _body())
    return jsonify(auth.call("housing", "import_inventory", content))
