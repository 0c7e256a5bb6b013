"""Valid test data for roster tests (ID numbers with real check digits)."""

from __future__ import annotations

from datetime import date
from typing import Any

from stdnum.cn import ric


def national_id(born: date, gender: str, seq: int = 1, area: str = "110101") -> str:
    """An 18-digit ID number whose birth date, gender digit and check digit are right."""
    order = seq * 2 + (1 if gender == "1" else 0)  # odd = male, even = female
    body = f"{area}{born:%Y%m%d}{order % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum ignores the last digit


def student(seat: int, *, klass: str = "2023010101", gender: str = "1",
            born: date = date(2005, 3, 14)) -> dict[str, Any]:
    number = f"{klass}{seat:02d}"
    return {
        "student_number": number, "name": f"学生{seat:02d}", "gender": gender,
        "national_id": national_id(born, gender, seq=seat + int(klass[-2:]) * 100 % 400),
        "birth_date": born.isoformat(), "college_code": klass[4:6], "class_code": klass,
    }


def clearance_completed(student_number: str, event_id: str, outcome: str = "graduated",
                        national_id_number: str | None = None) -> dict[str, Any]:
    return {
        "event_id": event_id, "occurred_at": "2027-06-28T10:15:00+08:00",
        "student_number": student_number, "national_id_number": national_id_number,
        "outcome": outcome, "clearance_batch": "2027-06",
        "items": {"library": "ok", "finance": "ok", "housing": "ok", "archives": "ok"},
    }


def clearance_revoked(student_number: str, event_id: str, revokes: str) -> dict[str, Any]:
    return {
        "event_id": event_id, "occurred_at": "2027-06-29T09:00:00+08:00",
        "student_number": student_number, "national_id_number": None,
        "clearance_batch": "2027-06", "reason": "误操作", "revokes_event_id": revokes,
    }
