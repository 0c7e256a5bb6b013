"""Duplicate records (查重, R14): the same ID number, or without one the same name, gender and birth date."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date


def person_key(name: str, gender: str, birth_date: date | str) -> str:
    born = birth_date.isoformat() if isinstance(birth_date, date) else birth_date
    return f"ngb:{name}|{gender}|{born}"


def file_keys(values: Mapping[str, object]) -> list[tuple[str, str]]:
    """(key, field to mark) pairs that must be unique within one import file."""
    keys = []
    number, national_id = values.get("student_number"), values.get("national_id")
    if number:
        keys.append((f"no:{number}", "student_number"))
    if national_id:
        keys.append((f"id:{national_id}", "national_id"))
    elif values.get("name") and values.get("gender") and values.get("birth_date"):
        keys.append((person_key(str(values["name"]), str(values["gender"]), values["birth_date"]), "name"))  # type: ignore[arg-type]
    return keys


def in_file_message(field: str, other_row: int) -> str:
    if field == "student_number":
        return f"学号与第{other_row}行重复"
    if field == "national_id":
        return f"身份证件号与第{other_row}行重复"
    return f"无身份证件号，姓名、性别、出生日期与第{other_row}行相同（疑似重复）"


def evidence(key: str, numbers: list[str]) -> str:
    if key.startswith("ngb:"):
        name, gender, born = key[4:].split("|")
        return f"学号 {'、'.join(numbers)} 的姓名（{name}）、性别、出生日期（{born}）相同，至少一条无身份证件号"
    return f"学号 {'、'.join(numbers)} 的身份证件号相同"
