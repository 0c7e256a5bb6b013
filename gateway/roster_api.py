"""JSON API `/api/v1/roster`: import/export of student records, code tables, problem records
and the audit chain check. Workbooks travel as base64 in JSON (`content`) or as a multipart
`file`; errors come back as `{"error": {...}}` like the rest of the API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from gateway import auth
from gateway.roster_web import (
    MAX_PHOTO_MB,
    MAX_UPLOAD_MB,
    PHOTO_TOO_BIG,
    long_call,
    uploaded_photo_zip,
)
from gateway.security import check_api_request
from gateway.spreadsheets import api_workbook, base64_body
from services.common.errors import Invalid

bp = Blueprint("roster_api", __name__, url_prefix="/api/v1/roster")


@bp.before_request
def _csrf() -> None:
    # Every route here needs a signed-in caller: 401 before any check of the request (400/404).
    auth.require_login()
    check_api_request()


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("请求体必须是 JSON 对象")
    return body


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


@bp.get("/import/template")
def template() -> Response:
    return jsonify(auth.call("roster", "import_template"))


@bp.post("/import")
def import_students() -> Response:
    """multipart (`file`, `valid_only`, `update_existing`) or JSON {content, valid_only, update_existing}."""
    options = request.form if request.files else _body()
    content = api_workbook(MAX_UPLOAD_MB, options)
    return jsonify(long_call("import_students", content, _flag(options.get("valid_only", False)),
                             _flag(options.get("update_existing", False))))


@bp.get("/export")
def export() -> Response:
    return jsonify(long_call("export_students", request.args.get("q", ""), request.args.get("class_code", ""),
                             request.args.get("status", "")))


@bp.get("/codes")
def code_tables() -> Response:
    return jsonify(auth.call("roster", "code_tables", _flag(request.args.get("divisions", ""))))


@bp.put("/codes/<table>/<code>")
def save_code(table: str, code: str) -> Response:
    body = _body()
    return jsonify(auth.call("roster", "save_code", table, code, str(body.get("label", "")),
                             _flag(body.get("active", True))))


@bp.get("/problems")
def problems() -> Response:
    return jsonify(auth.call("roster", "list_problem_records", request.args.get("state", "open")))


@bp.post("/problems/scan")
def scan() -> Response:
    return jsonify(auth.call("roster", "scan_duplicates"))


@bp.post("/problems/<int:problem_id>/merge")
def merge(problem_id: int) -> Response:
    body = _body()
    return jsonify(auth.call("roster", "merge_duplicate", problem_id, str(body.get("keep", "")),
                             str(body.get("remove", "")), str(body.get("evidence", ""))))


@bp.post("/problems/<int:problem_id>/dismiss")
def dismiss(problem_id: int) -> Response:
    return jsonify(auth.call("roster", "dismiss_problem_record", problem_id, str(_body().get("note", ""))))


@bp.get("/audit/verify")
def verify_audit() -> Response:
    return jsonify(long_call("verify_audit_chain"))


@bp.get("/students/<student_number>/record")
def record(student_number: str) -> Response:
    return jsonify(auth.call("roster", "student_record", student_number))


@bp.patch("/students/<student_number>")
def update_student(student_number: str) -> Response:
    """{"values": {field: value}, "reason": "..."}: staff edits; key fields become a request."""
    body = _body()
    values = body.get("values")
    if not isinstance(values, dict):
        raise Invalid("values 必须是 {字段: 值} 对象")
    return jsonify(auth.call("roster", "update_student", student_number, values, str(body.get("reason", ""))))


@bp.post("/students/<student_number>/change-requests")
def submit_change_request(student_number: str) -> Response:
    body = _body()
    values = body.get("values")
    if not isinstance(values, dict):
        raise Invalid("values 必须是 {字段: 值} 对象")
    return jsonify(auth.call("roster", "submit_change_request", student_number, values,
                             str(body.get("evidence", ""))))


@bp.get("/students/<student_number>/audit")
def student_audit(student_number: str) -> Response:
    return jsonify(auth.call("roster", "student_audit", student_number))


@bp.get("/change-requests")
def change_requests() -> Response:
    return jsonify(auth.call("roster", "list_change_requests", request.args.get("state", "")))


@bp.post("/change-requests/<int:request_id>/review")
def review(request_id: int) -> Response:
    body = _body()
    return jsonify(auth.call("roster", "review_change_request", request_id, _flag(body.get("approve", False)),
                             str(body.get("note", ""))))


@bp.get("/field-policies")
def field_policies() -> Response:
    return jsonify(auth.call("roster", "field_policies"))


@bp.put("/field-policies/<field>")
def set_field_policy(field: str) -> Response:
    body = _body()
    return jsonify(auth.call("roster", "set_field_policy", field, str(body.get("student", "")),
                             str(body.get("staff", ""))))


@bp.get("/statistics")
def statistics() -> Response:
    return jsonify(auth.call("roster", "statistics", request.args.get("by", "college")))


# -- 学号换发 (R3) and photos (R15) -----------------------------------------------------------------


@bp.get("/number-mapping/template")
def number_mapping_template() -> Response:
    return jsonify(auth.call("roster", "number_mapping_template"))


@bp.post("/number-mapping/preview")
def preview_number_mapping() -> Response:
    """JSON {content} or multipart `file`: every row checked, nothing changed."""
    body = {} if request.files else _body()
    return jsonify(long_call("preview_number_mapping", api_workbook(MAX_UPLOAD_MB, body)))


@bp.post("/number-mapping/apply")
def apply_number_mapping() -> Response:
    """JSON {content, reason} or multipart `file` + `reason`: all rows or none."""
    body = dict(request.form) if request.files else _body()
    return jsonify(long_call("apply_number_mapping", api_workbook(MAX_UPLOAD_MB, body), str(body.get("reason", ""))))


@bp.get("/students/<student_number>/number-changes")
def number_changes(student_number: str) -> Response:
    return jsonify(auth.call("roster", "number_changes", student_number))


@bp.get("/students/<student_number>/photo")
def photo(student_number: str) -> Response:
    return jsonify(auth.call("roster", "photo", student_number))


@bp.put("/students/<student_number>/photo")
def upload_photo(student_number: str) -> Response:
    """{"content": base64 JPEG, "filename": "..."}"""
    body = _body()
    content = base64_body(body.get("content"), MAX_PHOTO_MB, not_base64="content 必须是 base64 编码的 JPEG 照片",
                          too_big=PHOTO_TOO_BIG)
    filename = body.get("filename")
    return jsonify(auth.call("roster", "upload_photo", student_number, content,
                             str(filename) if filename else None))


@bp.post("/photos/import")
def import_photos() -> Response:
    """JSON {content: base64 zip, valid_only} or multipart `file` (+ `valid_only`)."""
    options = request.form if request.files else _body()
    return jsonify(long_call("import_photos", uploaded_photo_zip(options), _flag(options.get("valid_only", False))))
