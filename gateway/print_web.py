"""Print views as PDF (issue 9, R20): 在校证明, 学籍卡 and the counselor's 初始密码分发单.

Each is an HTML template (`print_*.html`, A4) turned into a PDF by `gateway.pdf`. The data is what the
services give this caller: roster masks the ID number per role and checks scope, identity issues the
one-time passwords; the gateway only checks the menu first (I6) and lays the page out.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime
from typing import Any

from flask import Blueprint, current_app, render_template, url_for
from werkzeug.wrappers import Response

from gateway import auth, pdf
from gateway.presenters import BEIJING
from gateway.security import check_form
from gateway.web import _page
from services.common.caller import ROLE_LABELS, STUDENT, Caller
from services.common.errors import Conflict, Forbidden, NotFound

bp = Blueprint("print_web", __name__, url_prefix="/print")

SLIPS_PER_ROW = 2  # password slips side by side; rows of two, five rows to an A4 page


@bp.before_request
def _csrf() -> None:
    check_form()


def _today() -> date:
    return datetime.now(BEIJING).date()


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def chinese_month(value: str | None) -> str:
    """'2023-09' (入学年月) as 2023年9月; anything else as given."""
    if not value:
        return ""
    year, _, month = value.partition("-")
    return f"{year}年{int(month)}月" if year.isdigit() and month.isdigit() else value


def certificate_number(student_number: str, day: date, secret: str) -> str:
    """ZX + date + student number + 4 check characters keyed by the gateway's secret: unique per student
    and day, and a clerk holding the secret can tell a made-up number from one this system printed."""
    check = hmac.new(secret.encode(), f"{student_number}|{day.isoformat()}".encode(), hashlib.sha256)
    return f"ZX{day:%Y%m%d}{student_number}{check.hexdigest()[:4].upper()}"


def _may_print(caller: Caller, student_number: str) -> None:
    """Students print their own papers (R21); staff need the student list, roster checks their scope."""
    if caller.role == STUDENT:
        _page(caller, "my_record")
        if caller.username != student_number:
            raise Forbidden("学生只能打印本人的在校证明和学籍卡")
    else:
        _page(caller, "students")


def _labels(record: dict[str, Any]) -> dict[str, str]:
    """The record's fields by key, as printed: code fields by their label."""
    return {f["key"]: "" if f.get("label") is None else str(f["label"]) for f in record["fields"]}


def _context(caller: Caller, **values: Any) -> dict[str, Any]:
    today = _today()
    return {"school": current_app.config["XUEJI_SCHOOL_NAME"], "today": today, "today_cn": chinese_date(today),
            "printed_by": caller.username, "printed_role": ROLE_LABELS.get(caller.role, caller.role), **values}


def _ascii_name(kind: str, student_number: str) -> str:
    return f"{kind}-{student_number}.pdf"


# -- 在校证明 ---------------------------------------------------------------------------------------


def certificate_refusal(student: dict[str, Any]) -> str | None:
    """Why no in-school certificate can be issued for this student, or None (only students on campus)."""
    if student.get("on_campus"):
        return None
    who = f"{student.get('name', '')}（{student.get('student_number', '')}）"
    status = student.get("status_label") or student.get("status") or ""
    if student.get("left"):
        return f"{who}学籍状态为“{status}”，已离校，不能开具在校证明"
    return f"{who}学籍状态为“{status}”，当前不在校，不能开具在校证明"


@bp.get("/certificate/<student_number>.pdf")
def certificate(student_number: str) -> Response:
    caller = auth.require_login()
    _may_print(caller, student_number)
    outcomes = auth.rpc().call_many({"student": ("roster", "get_student", student_number),
                                     "record": ("roster", "student_record", student_number)}, caller=caller)
    student = outcomes["student"].unwrap()
    refusal = certificate_refusal(student)
    if refusal:
        raise Conflict(refusal)
    fields = _labels(outcomes["record"].unwrap())
    major_name = ""
    if caller.role != STUDENT:  # roster's class_info (org names) answers staff only: students get the code
        major_name = (auth.call("roster", "class_info", student["class_code"]) or {}).get("major_name") or ""
    day = _today()
    html = render_template("print_certificate.html", **_context(
        caller, s=student, fields=fields, major_name=major_name, entry=chinese_month(fields.get("entry_month")),
        number=certificate_number(student_number, day, current_app.config["SECRET_KEY"])))
    return pdf.response(html, f"在校证明_{student['name']}_{student_number}.pdf",
                        _ascii_name("certificate", student_number))


# -- 学籍卡 -------------------------------------------------------------------------------------------


def _optional(outcome: Any) -> list[dict[str, Any]] | None:
    """A section the caller may not see is left out (None); any other failure fails the card, since
    a printed record must not silently lack a part."""
    if isinstance(outcome.error, Forbidden):
        return None
    return list(outcome.unwrap())


def field_rows(fields: list[dict[str, Any]], per_row: int = 2) -> list[list[dict[str, Any]]]:
    """The record's fields in rows of `per_row` (header, value) pairs for the card's table."""
    return [fields[i:i + per_row] for i in range(0, len(fields), per_row)]


@bp.get("/record/<student_number>.pdf")
def record_card(student_number: str) -> Response:
    caller = auth.require_login()
    _may_print(caller, student_number)
    outcomes = auth.rpc().call_many({
        "student": ("roster", "get_student", student_number),
        "record": ("roster", "student_record", student_number),
        "timeline": ("roster", "status_timeline", student_number),
        "moves": ("roster", "class_moves", student_number),
        "photo": ("roster", "photo", student_number),
    }, caller=caller)
    student = outcomes["student"].unwrap()
    record = outcomes["record"].unwrap()
    timeline, moves = _optional(outcomes["timeline"]), _optional(outcomes["moves"])
    # No photo yet (or none the caller may see) prints the card without one; other failures fail it.
    photo = None if isinstance(outcomes["photo"].error, NotFound | Forbidden) else outcomes["photo"].unwrap()
    html = render_template("print_record.html", **_context(
        caller, s=student, rows=field_rows(record["fields"]), photo=photo,
        timeline=None if timeline is None else timeline[::-1],  # newest first
        moves=None if moves is None else moves[::-1]))
    return pdf.response(html, f"学籍卡_{student['name']}_{student_number}.pdf",
                        _ascii_name("record-card", student_number))


# -- 初始密码分发单 -------------------------------------------------------------------------------------


def slip_rows(items: list[dict[str, Any]], per_row: int = SLIPS_PER_ROW) -> list[list[dict[str, Any]]]:
    return [items[i:i + per_row] for i in range(0, len(items), per_row)]


def password_slips(caller: Caller, class_code: str | None) -> Response:
    """The initial-password sheet as PDF slips: the format=pdf alternative of the xlsx on
    /accounts/initial-passwords. Identity issues each password once and returns it once, so this makes
    exactly one issuing call, and only after checking that a PDF can be made at all."""
    _page(caller, "initial_passwords")
    pdf.require_available()
    issued = auth.call("identity", "issue_initial_passwords", class_code)
    html = render_template("print_passwords.html", **_context(
        caller, rows=slip_rows(issued["items"]), count=issued["count"], class_code=class_code,
        login_url=url_for("web.login_form", _external=True)))
    return pdf.response(html, f"学生初始密码分发单_{class_code or '全部'}.pdf",
                        f"initial-passwords-{class_code or 'all'}.pdf", download=True)
