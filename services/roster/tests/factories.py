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


DIGITS = "零一二三四五六七八九"


def cn_name(n: int, width: int = 2) -> str:
    """学生零一…: a name the record accepts (no digits, R13's name rule), unique per number."""
    return "学生" + "".join(DIGITS[int(d)] for d in f"{n:0{width}d}")


def student(seat: int, *, klass: str = "2023010101", gender: str = "1",
            born: date = date(2005, 3, 14), with_id: bool = True) -> dict[str, Any]:
    """A full record as `register_students` takes it (`check_record`'s fields). `with_id=False`: no
    document of their own (type 其他), a guardian's ID number instead."""
    row: dict[str, Any] = {
        "student_number": f"{klass}{seat:02d}", "name": cn_name(seat), "gender": gender,
        "birth_date": born.isoformat(), "id_type": "1",
        "national_id": national_id(born, gender, seq=seat + int(klass[-2:]) * 100 % 400),
        "ethnicity": "01", "entry_month": f"{klass[:4]}-09", "class_code": klass,
    }
    if not with_id:
        row.update(id_type="9", national_id=None, guardian1_name="家长",
                   guardian1_id_number=national_id(date(1975, 1, 1), "1", seq=seat))
    return row


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
