"""Transfers between institutions, roster's side (T1, T2, R6): the national student id, the number a
transferred-in student gets, and how a record received from another institution is admitted.

Plain code: the use cases in services/roster/transfers_in_out.py read and write the register.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.roster.domain.codes import CodeBook
from services.roster.domain.record import (
    FIELD_BY_KEY,
    GUARDIAN_KEYS,
    GUARDIAN_SLOTS,
    NO_DOCUMENT,
    check_record,
)
from services.roster.domain.students import RecordError

MAX_SEAT = 99
# Without these a person cannot be registered or matched: an admission with a bad one is refused.
# Other fields of a received record are taken where they pass the import's checks, else left empty
# (the whole record stays archived with the transfer in the transfer service).
ESSENTIAL = frozenset({"name", "gender", "birth_date", "id_type", "national_id", "class_code", "student_number"})
# The sending institution's own numbering: replaced by ours on admission (R6: transfer-in students get a
# new number), derived again from the class joined.
REPLACED = ("student_number", "class_code", "major_code", "college_code")


def national_student_id(stored: str | None, national_id: str | None, student_number: str) -> str:
    """全国学籍号: the one kept from a transfer if any, else "G" + the ID number (how the national
    register builds it for people with an ID card); students without one: "L" + the student number,
    a local stand-in the national register would replace."""
    if stored:
        return stored
    if national_id:
        return "G" + national_id.upper()
    return "L" + student_number


def next_student_number(class_code: str, taken: Iterable[str]) -> str | None:
    """R6: the class code (entry year + college + major + class) + the next seat after the highest
    issued (numbers are never reused: students who left keep theirs); a gap when seat 99 is taken;
    None when the class has no seat left."""
    seats = {int(n[len(class_code):]) for n in taken
             if n.startswith(class_code) and len(n) == len(class_code) + 2 and n[len(class_code):].isdigit()}
    highest = max(seats, default=0)
    if highest < MAX_SEAT:
        return f"{class_code}{highest + 1:02d}"
    free = next((seat for seat in range(1, MAX_SEAT + 1) if seat not in seats), None)
    return None if free is None else f"{class_code}{free:02d}"


def raw_from_record(record: Mapping[str, Any], *, student_number: str, class_code: str) -> dict[str, Any]:
    """The received record as check_record reads an import row: our number and class, guardians
    spread over the slots, everything else as sent (codes or labels both resolve)."""
    raw: dict[str, Any] = {key: record.get(key) for key in FIELD_BY_KEY if not key.startswith("guardian")}
    guardians = record.get("guardians") or []
    if isinstance(guardians, list):
        for n, guardian in zip(GUARDIAN_SLOTS, guardians, strict=False):
            if isinstance(guardian, Mapping):
                for key in GUARDIAN_KEYS:
                    raw[f"guardian{n}_{key}"] = guardian.get(key)
    for key in REPLACED:
        raw[key] = None
    raw["student_number"], raw["class_code"] = student_number, class_code
    if raw.get("national_id") is None and record.get("id_number"):  # the interchange's identity name
        raw["national_id"] = record.get("id_number")
    return {k: v for k, v in raw.items() if not isinstance(v, (dict, list))}


@dataclass
class Admission:
    values: dict[str, Any]  # typed, ready to store (as check_record returns them)
    refusing: list[RecordError]  # about the person's identity: the admission is refused
    dropped: list[str]  # fields received but not valid here: left empty


def check_admission(raw: Mapping[str, Any], book: CodeBook, *, classes: Mapping[str, str | None],
                    today: date | None = None) -> Admission:
    """The import's validation (check_record) over a received record. Errors on what identifies the
    person refuse it; a missing field is tolerated; any other bad value is left empty (a guardian as a
    whole), and the record is checked again without it."""
    raw = dict(raw)
    dropped: set[str] = set()
    for _ in range(5):  # clearing a value only removes errors: this settles in two or three passes
        check = check_record(raw, book, today=today, classes=classes)
        refusing = [e for e in check.errors if _essential(e.field, check.values)]
        if refusing:
            return Admission(check.values, refusing, sorted(dropped))
        bad = {e.field for e in check.errors if _str(raw.get(e.field))}  # missing ones are tolerated
        for key in {e.field for e in check.errors if e.field.startswith("guardian")}:
            bad.add(key)
        if not bad:
            return Admission(check.values, [], sorted(dropped))
        for key in bad:
            if key.startswith("guardian"):
                slot = key[len("guardian")]
                for part in GUARDIAN_KEYS:
                    raw[f"guardian{slot}_{part}"] = None
                dropped.add(f"guardian{slot}")
            else:
                raw[key] = None
                dropped.add(key)
    raise AssertionError("clearing invalid values did not settle")  # pragma: no cover


def _essential(key: str, values: Mapping[str, Any]) -> bool:
    # A student without an ID document is identified by the guardian's (R13).
    return key in ESSENTIAL or (values.get("id_type") == NO_DOCUMENT and key == "guardian1_id_number")


def _str(value: Any) -> str:
    return "" if value is None else str(value).strip()
