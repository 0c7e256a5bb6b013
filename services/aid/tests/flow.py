"""Set-up shared by aid's handler tests: students, identifications, quotas and the review chain."""

from __future__ import annotations

from typing import Any

from services.aid import applications, handlers, registers
from services.aid.tests.factories import caller, id_number, registered
from services.common.caller import Caller
from services.common.db import Database

YEAR = "2026-2027"
CLASS = "2025010101"
COLLEGE = "01"
OPERATOR = caller("aid_operator")
AUDITOR = caller("aid_auditor")
COUNSELOR = caller("counselor", "classes", CLASS)
DEPUTY = caller("deputy_secretary", "college", COLLEGE)


def number(n: int, klass: str = CLASS) -> str:
    return f"{klass}{n:02d}"


def student(number_: str) -> Caller:
    return caller("student", "self", number_)


def enrol(db: Database, *numbers: str) -> None:
    for n in numbers:
        handlers.on_student_registered(db, registered(n, klass=n[:10]))


def identify(db: Database, n: str, level: str = "困难", serial: int = 1, who: Caller = COUNSELOR) -> dict[str, Any]:
    return registers.identify_needy(db, who, {
        "student_number": n, "academic_year": YEAR, "level": level, "reasons": "父亲重病，家庭收入低",
        "evidence": ["低保证.pdf"], "flags": [], "id_number": id_number(serial), "income_per_capita": 3200})


def allocate(db: Database, programme: str, places: int | None, funds: int | None = None, klass: str = CLASS) -> None:
    college = klass[4:6]
    for level, extra in (("programme", {}), ("college", {"college_code": college}),
                         ("class", {"class_code": klass, "college_code": college})):
        registers.allocate_quota(db, OPERATOR, {"programme_code": programme, "academic_year": YEAR, "level": level,
                                                "places": places, "funds": funds, **extra})


def apply(db: Database, n: str, programme: str = "GJZXJ", **extra: Any) -> dict[str, Any]:
    return applications.apply(db, student(n), {"student_number": n, "programme_code": programme,
                                               "academic_year": YEAR, "statement": "申请资助", **extra})


def approve_through(db: Database, app_id: int, steps: int = 4) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for who in (COUNSELOR, DEPUTY, OPERATOR, AUDITOR)[:steps]:
        view = applications.review_application(db, who, app_id, "approve")
    return view
