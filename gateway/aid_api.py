"""JSON API `/api/v1/aid`: the aid service for scripts and the report charts. Errors come back as
`{"error": {...}}` like the rest of the API; the service checks roles and scopes (A5)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from gateway import auth
from gateway.aid_web import current_academic_year
from gateway.security import check_api_request
from services.common.errors import Invalid

bp = Blueprint("aid_api", __name__, url_prefix="/api/v1/aid")


@bp.before_request
def _csrf() -> None:
    # Every route here needs a signed-in caller: 401 before any check of the request (400/404).
    auth.require_login()
    check_api_request()


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("请求体必须是 JSON 对象")
    return body


def _year() -> str:
    return request.args.get("year", "").strip() or current_academic_year()


def _paging() -> tuple[int, int]:
    try:
        return int(request.args.get("page", 1)), int(request.args.get("per_page", 20))
    except ValueError:
        raise Invalid("页码和每页条数必须是整数") from None


@bp.get("/programmes")
def programmes() -> Response:
    return jsonify(auth.call("aid", "list_programmes"))


@bp.get("/needy")
def needy_register() -> Response:
    return jsonify(auth.call("aid", "needy_register", _year(), *_paging(), request.args.get("level", "")))


@bp.post("/needy")
def identify() -> Response:
    return jsonify(auth.call("aid", "identify_needy", _body()))


@bp.post("/needy/batch")
def identify_many() -> Response:
    rows = _body().get("rows")
    return jsonify(auth.call("aid", "identify_many", rows if isinstance(rows, list) else None))


@bp.get("/needy/<student_number>")
def needy_record(student_number: str) -> Response:
    return jsonify(auth.call("aid", "needy_record", student_number, _year(), request.args.get("reveal") == "1"))


@bp.get("/quotas")
def quotas() -> Response:
    return jsonify(auth.call("aid", "list_quotas", request.args.get("programme", ""), _year()))


@bp.post("/quotas")
def allocate() -> Response:
    return jsonify(auth.call("aid", "allocate_quota", _body()))


@bp.post("/applications")
def apply() -> Response:
    return jsonify(auth.call("aid", "apply", _body()))


@bp.get("/applications/queue")
def queue() -> Response:
    return jsonify(auth.call("aid", "review_queue", *_paging()))


@bp.get("/applications/<int:application_id>")
def application(application_id: int) -> Response:
    return jsonify(auth.call("aid", "get_application", application_id))


@bp.post("/applications/<int:application_id>/review")
def review(application_id: int) -> Response:
    body = _body()
    return jsonify(auth.call("aid", "review", application_id, str(body.get("decision", "")),
                             str(body.get("reason", ""))))


@bp.post("/applications/review")
def review_many() -> Response:
    body = _body()
    ids = body.get("ids")
    return jsonify(auth.call("aid", "review_many", ids if isinstance(ids, list) else None,
                             str(body.get("decision", "")), str(body.get("reason", ""))))


@bp.get("/me")
def mine() -> Response:
    return jsonify(auth.call("aid", "my_aid"))


@bp.get("/aided")
def aided() -> Response:
    return jsonify(auth.call("aid", "aided_register", _year(), *_paging()))


@bp.get("/consistency")
def consistency() -> Response:
    return jsonify(auth.call("aid", "consistency_check", _year()))


@bp.get("/summary")
def summary() -> Response:
    return jsonify(auth.call("aid", "aid_summary", _year()))
