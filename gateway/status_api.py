"""JSON API for 学籍异动 (issue 5) under `/api/v1/roster`: status changes with evidence, revocation,
the authority's approvals, settings, batch sheets, calendar jobs, absences, pending graduations
and class moves. Files travel as base64 in JSON (`content`, attachments' `data`) or as a
multipart `file`; errors come back as `{"error": {"code", "message"}}` like the rest of the API.

GET  /status-kinds                              kinds the caller may apply
GET  /students/<n>/status-changes               the timeline
POST /students/<n>/status-changes               {kind, effective_on, reason, evidence, attachments, details}
POST /status-changes/<id>/revoke                {reason}
GET  /status-attachments/<id>                   {filename, content_type, size, sha256, data}
GET  /status-applications?state=pending         POST /status-applications/<id>/decide {approve, note}
GET  /settings                                  PUT /settings/<key> {value}
GET  /status-batch/template                     POST /status-batch/preview | /status-batch/apply {content}
GET  /calendar/<job>?on=                        dry run; POST /calendar/<job> {on}: run; GET /calendar-runs
GET  /absences?student_number=&class_code=      POST /absences {entries}; POST /absences/import {content}
GET  /absences/template, /suspected-dropouts    POST /reported {student_numbers}
GET  /pending-graduations?state=open            {items (each with holds_bed, bed), housing_available}
POST /pending-graduations {student_number, reason, expected_on}; POST /pending-graduations/<id>/close {note}
GET  /students/<n>/class-moves                  POST /students/<n>/class {to_class, reason}
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from gateway import auth
from gateway.roster_api import _body, _flag
from gateway.roster_web import long_call
from gateway.security import check_api_request
from gateway.spreadsheets import api_workbook
from gateway.status_web import JOBS, MAX_UPLOAD_MB, beds_of
from services.common.errors import Invalid, NotFound

bp = Blueprint("status_api", __name__, url_prefix="/api/v1/roster")


@bp.before_request
def _csrf() -> None:
    # Every route here needs a signed-in caller: 401 before any check of the request (400/404).
    auth.require_login()
    check_api_request()


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    return "" if value is None else str(value)


def _workbook() -> str:
    """multipart `file` or JSON {content: base64 .xlsx}."""
    return api_workbook(MAX_UPLOAD_MB, {} if request.files else _body())


def _job(job: str) -> str:
    if job not in JOBS:
        raise NotFound(f"日历任务 {job} 不存在（可选：{'、'.join(JOBS)}）")
    return job


# -- status changes ---------------------------------------------------------------------------------


@bp.get("/status-kinds")
def status_kinds() -> Response:
    return jsonify(auth.call("roster", "status_kinds"))


@bp.get("/students/<student_number>/status-changes")
def timeline(student_number: str) -> Response:
    return jsonify(auth.call("roster", "status_timeline", student_number))


@bp.post("/students/<student_number>/status-changes")
def apply_change(student_number: str) -> Response:
    """{applied, change_id | application_id, status, status_label}."""
    body = _body()
    attachments = body.get("attachments") or []
    details = body.get("details") or {}
    if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
        raise Invalid("attachments 必须是 [{filename, data}] 列表")
    if not isinstance(details, dict):
        raise Invalid("details 必须是对象")
    return jsonify(auth.call("roster", "apply_status_change", student_number, _text(body, "kind"),
                             _text(body, "effective_on"), _text(body, "reason"), _text(body, "evidence"),
                             attachments, details))


@bp.post("/status-changes/<int:change_id>/revoke")
def revoke(change_id: int) -> Response:
    return jsonify(auth.call("roster", "revoke_status_change", change_id, _text(_body(), "reason")))


@bp.get("/status-attachments/<int:attachment_id>")
def attachment(attachment_id: int) -> Response:
    return jsonify(auth.call("roster", "status_attachment", attachment_id))


@bp.get("/status-applications")
def applications() -> Response:
    return jsonify(auth.call("roster", "list_status_applications", request.args.get("state", "pending")))


@bp.post("/status-applications/<int:application_id>/decide")
def decide(application_id: int) -> Response:
    body = _body()
    return jsonify(auth.call("roster", "decide_status_application", application_id, _flag(body.get("approve")),
                             _text(body, "note")))


@bp.get("/settings")
def settings() -> Response:
    return jsonify(auth.call("roster", "roster_settings"))


@bp.put("/settings/<key>")
def save_setting(key: str) -> Response:
    body = _body()
    if "value" not in body:
        raise Invalid("请提供 value")
    return jsonify(auth.call("roster", "save_roster_setting", key, body["value"]))


# -- batch sheets ------------------------------------------------------------------------------------


@bp.get("/status-batch/template")
def batch_template() -> Response:
    return jsonify(auth.call("roster", "status_batch_template"))


@bp.post("/status-batch/preview")
def batch_preview() -> Response:
    return jsonify(long_call("preview_status_batch", _workbook()))


@bp.post("/status-batch/apply")
def batch_apply() -> Response:
    return jsonify(long_call("apply_status_batch", _workbook()))


# -- calendar jobs -----------------------------------------------------------------------------------


@bp.get("/calendar/<job>")
def calendar_preview(job: str) -> Response:
    return jsonify(long_call("calendar_preview", _job(job), request.args.get("on", "")))


@bp.post("/calendar/<job>")
def calendar_run(job: str) -> Response:
    body = request.get_json(silent=True)
    on = _text(body, "on") if isinstance(body, dict) else ""
    return jsonify(long_call("calendar_run", _job(job), on))


@bp.get("/calendar-runs")
def calendar_runs() -> Response:
    return jsonify(auth.call("roster", "calendar_runs"))


# -- absences, reporting, suspected dropouts -----------------------------------------------------


@bp.get("/absences")
def absences() -> Response:
    return jsonify(auth.call("roster", "absences", request.args.get("student_number", ""),
                             request.args.get("class_code", "")))


@bp.post("/absences")
def record_absences() -> Response:
    entries = _body().get("entries")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise Invalid("entries 必须是 [{student_number, day, excused, reachable, note}] 列表")
    return jsonify(auth.call("roster", "record_absences", entries))


@bp.post("/absences/import")
def import_absences() -> Response:
    return jsonify(long_call("import_absences", _workbook()))


@bp.get("/absences/template")
def absence_template() -> Response:
    return jsonify(auth.call("roster", "absence_template"))


@bp.get("/suspected-dropouts")
def suspected_dropouts() -> Response:
    return jsonify(auth.call("roster", "suspected_dropouts"))


@bp.post("/reported")
def mark_reported() -> Response:
    numbers = _body().get("student_numbers")
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
        raise Invalid("student_numbers 必须是学号列表")
    return jsonify(auth.call("roster", "mark_reported", numbers))


# -- pending graduations -----------------------------------------------------------------------------


@bp.get("/pending-graduations")
def pending_graduations() -> Response:
    """Roster's list with the bed each student still holds; `housing_available` false when housing
    did not answer (then `holds_bed` and `bed` are null)."""
    items = auth.call("roster", "pending_graduations", request.args.get("state", "open"))
    beds, notice = beds_of([i["student_number"] for i in items])
    for item in items:
        bed = beds.get(item["student_number"]) if beds is not None else None
        item["holds_bed"] = None if beds is None else bed is not None
        item["bed"] = bed
    return jsonify({"items": items, "housing_available": notice is None})


@bp.post("/pending-graduations")
def add_pending_graduation() -> Response:
    body = _body()
    return jsonify(auth.call("roster", "add_pending_graduation", _text(body, "student_number"),
                             _text(body, "reason"), _text(body, "expected_on")))


@bp.post("/pending-graduations/<int:entry_id>/close")
def close_pending_graduation(entry_id: int) -> Response:
    body = request.get_json(silent=True)
    note = _text(body, "note") if isinstance(body, dict) else ""
    return jsonify(auth.call("roster", "close_pending_graduation", entry_id, note))


# -- class moves ---------------------------------------------------------------------------------------


@bp.get("/students/<student_number>/class-moves")
def class_moves(student_number: str) -> Response:
    return jsonify(auth.call("roster", "class_moves", student_number))


@bp.post("/students/<student_number>/class")
def move_class(student_number: str) -> Response:
    body = _body()
    return jsonify(auth.call("roster", "move_class", student_number, _text(body, "to_class"),
                             _text(body, "reason")))
