"""JSON API for transfers (issue 8) under `/api/v1/transfers`: transfers between institutions, the
peers and their keys, the inspection list of refused messages, the working-day calendar and the
deadline settings, and changes inside the institution (T7). Files travel as base64 in JSON
(evidence `[{filename, data}]`, workbooks `content`) or as a multipart `file`; errors come back as
`{"error": {"code", "message"}}` like the rest of the API.

GET  ?direction=&state=&q=&page=&per_page=      {items, total, page, per_page} (items with days_left)
POST /                                          {student, peer_code, transfer_kind, reason, target_class_code,
                                                 evidence, out_of_term_reason} → the transfer (201)
GET  /<id>                                      the transfer with stages, messages and days_left
POST /<id>/decisions {stage, approve, reason}   POST /<id>/cancel {reason}   POST /<id>/resend
GET  /<id>/evidence/<file_id>                   {filename, content_type, data}
GET  /peers                                     PUT /peers/<code> {name, province, authority_code, active}
POST /peers/<code>/keys {key_id, secret}        → {…, secret} (a generated secret, shown this once)
POST /peers/<code>/keys/<key_id>/retire         GET /problems?page=&per_page=   POST /resend
GET  /calendar?year=                            {year, known, overrides, workdays}
PUT  /calendar/<day> {is_workday, note}         DELETE /calendar/<day>
GET  /calendar/template                         POST /calendar/import {content} | multipart file
GET  /settings                                  PUT /settings/<key> {value}
GET  /internal-changes?state=                   POST /internal-changes {student_number, kind, to_class_code, reason}
POST /internal-changes/<id>/decisions {approve, note}
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, jsonify, request

from gateway import auth
from gateway.api import MAX_PER_PAGE, MAX_QUERY, _int_arg
from gateway.roster_api import _body, _flag
from gateway.security import check_api_request
from gateway.status_api import _text, _workbook
from gateway.transfer_web import LONG_RPC, STUDENT_FIELDS
from services.common.errors import Invalid

bp = Blueprint("transfer_api", __name__, url_prefix="/api/v1/transfers")

@bp.before_request
def _csrf() -> None:
    # Every route here needs a signed-in caller: 401 before any check of the request (400/404).
    auth.require_login()
    check_api_request()


def _paging(default_per_page: int = 20) -> tuple[int, int]:
    page = _int_arg("page", 1, "页码必须是不小于 1 的整数")
    per_page = _int_arg("per_page", default_per_page, f"每页条数必须在 1 到 {MAX_PER_PAGE} 之间")
    if page < 1:
        raise Invalid("页码必须是不小于 1 的整数")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise Invalid(f"每页条数必须在 1 到 {MAX_PER_PAGE} 之间")
    return page, per_page


def _optional_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


# -- transfers -----------------------------------------------------------------------------------------


@bp.get("")
def list_transfers() -> Response:
    q = request.args.get("q", "").strip()
    if len(q) > MAX_QUERY:
        raise Invalid(f"查询条件不能超过 {MAX_QUERY} 个字符")
    page, per_page = _paging()
    return jsonify(auth.call("transfer", "list_transfers", request.args.get("direction", ""),
                             request.args.get("state", ""), q, page, per_page))


@bp.post("")
def file_transfer() -> tuple[Response, int]:
    body = _body()
    student = body.get("student")
    if not isinstance(student, dict):
        raise Invalid("student 必须是对象：{" + ", ".join(STUDENT_FIELDS) + "}")
    evidence = body.get("evidence") or []
    if not isinstance(evidence, list) or not all(isinstance(e, dict) for e in evidence):
        raise Invalid("evidence 必须是 [{filename, data}] 列表（data 为 base64）")
    student = {key: _text(student, key) for key in STUDENT_FIELDS}
    view = auth.call("transfer", "file_transfer", student, _text(body, "peer_code"), _text(body, "transfer_kind"),
                     _text(body, "reason"), _text(body, "target_class_code"), evidence,
                     _text(body, "out_of_term_reason"))
    return jsonify(view), 201


@bp.get("/<transfer_id>")
def get_transfer(transfer_id: str) -> Response:
    return jsonify(auth.call("transfer", "get_transfer", transfer_id))


@bp.post("/<transfer_id>/decisions")
def decide(transfer_id: str) -> Response:
    body = _body()
    if "approve" not in body:
        raise Invalid("请提供 approve（true 同意，false 不同意）")
    return jsonify(auth.call("transfer", "decide_transfer", transfer_id, _text(body, "stage"),
                             _flag(body.get("approve")), _text(body, "reason")))


@bp.post("/<transfer_id>/cancel")
def cancel(transfer_id: str) -> Response:
    return jsonify(auth.call("transfer", "cancel_transfer", transfer_id, _text(_body(), "reason")))


@bp.post("/<transfer_id>/resend")
def resend_transfer(transfer_id: str) -> Response:
    return jsonify(auth.call("transfer", "resend_now", transfer_id))


@bp.get("/<transfer_id>/evidence/<file_id>")
def evidence(transfer_id: str, file_id: str) -> Response:
    return jsonify(auth.call("transfer", "transfer_evidence", transfer_id, file_id))


# -- peers, keys, refused messages ---------------------------------------------------------------------


@bp.get("/peers")
def peers() -> Response:
    return jsonify(auth.call("transfer", "list_peers"))


@bp.put("/peers/<code>")
def save_peer(code: str) -> Response:
    body = _body()
    return jsonify(auth.call("transfer", "save_peer", code, _text(body, "name"), _text(body, "province"),
                             _text(body, "authority_code"), _flag(body.get("active", True))))


@bp.post("/peers/<code>/keys")
def add_key(code: str) -> tuple[Response, int]:
    body = _body()
    return jsonify(auth.call("transfer", "add_peer_key", code, _text(body, "key_id"), _text(body, "secret"))), 201


@bp.post("/peers/<code>/keys/<key_id>/retire")
def retire_key(code: str, key_id: str) -> Response:
    return jsonify(auth.call("transfer", "retire_peer_key", code, key_id))


@bp.get("/problems")
def problems() -> Response:
    page, per_page = _paging(50)
    return jsonify(auth.call("transfer", "interchange_problems", page, per_page))


@bp.post("/resend")
def resend() -> Response:
    return jsonify(auth.call("transfer", "resend_now", _text(_optional_body(), "transfer_id")))


# -- working-day calendar and settings -----------------------------------------------------------------


@bp.get("/calendar")
def calendar_days() -> Response:
    year = _int_arg("year", date.today().year, "year 必须是年份，如 2027")
    if not 2000 <= year <= 2100:
        raise Invalid("year 必须是 2000 到 2100 之间的年份")
    return jsonify(auth.call("transfer", "calendar_days", year))


@bp.put("/calendar/<day>")
def save_day(day: str) -> Response:
    body = _body()
    if "is_workday" not in body:
        raise Invalid("请提供 is_workday（true 调休上班日，false 节假日）")
    return jsonify(auth.call("transfer", "save_calendar_day", day, _flag(body.get("is_workday")),
                             _text(body, "note")))


@bp.delete("/calendar/<day>")
def delete_day(day: str) -> Response:
    return jsonify(auth.call("transfer", "delete_calendar_day", day))


@bp.get("/calendar/template")
def calendar_template() -> Response:
    return jsonify(auth.call("transfer", "calendar_template"))


@bp.post("/calendar/import")
def import_calendar() -> Response:
    return jsonify(auth.long_call("transfer", "import_calendar", _workbook(), timeout=LONG_RPC))


@bp.get("/settings")
def settings() -> Response:
    return jsonify(auth.call("transfer", "transfer_settings"))


@bp.put("/settings/<key>")
def save_setting(key: str) -> Response:
    body = _body()
    if "value" not in body:
        raise Invalid("请提供 value")
    return jsonify(auth.call("transfer", "save_transfer_setting", key, body["value"]))


# -- changes inside the institution (T7) ---------------------------------------------------------------


@bp.get("/internal-changes")
def internal_changes() -> Response:
    return jsonify(auth.call("transfer", "list_internal_changes", request.args.get("state", "")))


@bp.post("/internal-changes")
def file_internal_change() -> tuple[Response, int]:
    body = _body()
    return jsonify(auth.call("transfer", "file_internal_change", _text(body, "student_number"), _text(body, "kind"),
                             _text(body, "to_class_code"), _text(body, "reason"))), 201


@bp.post("/internal-changes/<int:change_id>/decisions")
def decide_internal_change(change_id: int) -> Response:
    body = _body()
    if "approve" not in body:
        raise Invalid("请提供 approve（true 同意，false 不同意）")
    return jsonify(auth.call("transfer", "decide_internal_change", change_id, _flag(body.get("approve")),
                             _text(body, "note")))
