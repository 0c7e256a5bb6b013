"""Checking an outflow request against the student's record, and who may transfer out.

A `transfer.request` (contract xj-transfer/1) names the student by outflow student number
and carries name, birth date, ID type and number and, often, the national student id.
The outflow side rejects the request (`student_mismatch`) when these disagree with its
record. Values are compared after normalising the differences that do not change who
the person is: spacing, full-width characters, the separator in minority names, a
lower-case check digit, the way a date is written.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

# Request field (contract name) → record field (roster name).
NAME, BIRTH_DATE, ID_NUMBER, NATIONAL_STUDENT_ID = "name", "birth_date", "id_number", "national_student_id"
RECORD_FIELD = {NAME: "name", BIRTH_DATE: "birth_date", ID_NUMBER: "national_id",
                NATIONAL_STUDENT_ID: "national_student_id"}

# id_type "1" = 居民身份证; other types (e.g. a guardian's ID for a student without one,
# R13) say nothing about the student's own ID number.
RESIDENT_ID = "1"

_NAME_DOTS = str.maketrans({"•": "·", "・": "·", "‧": "·", ".": "·"})  # after NFKC
_RESIDENT_ID = re.compile(r"^\d{17}[\dX]$")


def normalise_name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).translate(_NAME_DOTS)
    text = "".join(text.split())
    return text or None


def normalise_id(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = "".join(unicodedata.normalize("NFKC", value).split()).upper()
    return text or None


def parse_date(value: Any) -> date | None:
    """A date as written in requests and records: a date, ISO, YYYYMMDD or with '/' or '.'."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip()
    match = re.fullmatch(r"(\d{4})[-/.]?(\d{1,2})[-/.]?(\d{1,2})", text)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def birth_date_of_id(national_id: str | None) -> date | None:
    """Digits 7–14 of an 18-character resident ID number are the birth date (GB 11643)."""
    if national_id is None or not _RESIDENT_ID.match(national_id):
        return None
    return parse_date(national_id[6:14])


def _record_birth_date(record: Mapping[str, Any]) -> date | None:
    return parse_date(record.get("birth_date")) or birth_date_of_id(normalise_id(record.get("national_id")))


def match_student(request_fields: Mapping[str, Any], record: Mapping[str, Any]) -> list[str]:
    """The request fields that disagree with the record (empty: the student matches).

    Name and birth date must always agree; a value missing on either side counts as a
    mismatch, since it cannot be confirmed. The ID number is checked when the request
    says it is the student's resident ID (or does not say). The national student id is
    checked when both sides have one.
    """
    mismatches = []
    name = normalise_name(request_fields.get(NAME))
    if name is None or name != normalise_name(record.get(RECORD_FIELD[NAME])):
        mismatches.append(NAME)
    born = parse_date(request_fields.get(BIRTH_DATE))
    if born is None or born != _record_birth_date(record):
        mismatches.append(BIRTH_DATE)
    if request_fields.get("id_type", RESIDENT_ID) == RESIDENT_ID:
        id_number = normalise_id(request_fields.get(ID_NUMBER))
        if id_number is None or id_number != normalise_id(record.get(RECORD_FIELD[ID_NUMBER])):
            mismatches.append(ID_NUMBER)
    asked = normalise_id(request_fields.get(NATIONAL_STUDENT_ID))
    held = normalise_id(record.get(RECORD_FIELD[NATIONAL_STUDENT_ID]))
    if asked is not None and held is not None and asked != held:
        mismatches.append(NATIONAL_STUDENT_ID)
    return mismatches


def transfer_out_refusal(left: bool) -> str | None:
    """Why the student cannot be transferred out, or None: only students still on the
    roll can (a graduate, or one who already transferred out, has nothing to move)."""
    if left:
        return "学生已离校，不能办理转出"
    return None


def may_transfer_out(left: bool) -> bool:
    return transfer_out_refusal(left) is None


def is_newer_change(last_applied: int | None, change_id: int) -> bool:
    """Roster numbers its status changes in order; an older one arriving late must not win."""
    return last_applied is None or change_id > last_applied
