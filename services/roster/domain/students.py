"""The student record's identity fields: student numbers (R6) and ID numbers (R13)."""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from stdnum import exceptions as stdnum_exceptions
from stdnum.cn import ric

STUDENT_NUMBER = re.compile(r"^\d{4}\d{2}\d{2}\d{2}\d{2}$")
EXAM_NUMBER = re.compile(r"^\d{8,20}$")
ID_NUMBER = re.compile(r"\d{17}[\dX]")  # resident ID shape (used with fullmatch)


def is_provisional(student_number: str, exam_number: str | None) -> bool:
    """R3: until numbers are issued the gaokao registration number (考生号) stands in for the student
    number; such a record's number equals its exam number, and the R6 shape is not asked of it."""
    return bool(exam_number) and student_number == exam_number and bool(EXAM_NUMBER.match(student_number))


class RecordError(ValueError):
    """A field value the register refuses; `field` names it for forms and spreadsheets."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_student_number(number: str, college_code: str, class_code: str) -> None:
    """R6: entry year (4) + college (2) + major (2) + class (2) + seat (2)."""
    if not STUDENT_NUMBER.match(number):
        raise RecordError("student_number", "学号应为12位数字：入学年份4位+学院2位+专业2位+班级2位+序号2位")
    if number[4:6] != college_code:
        raise RecordError("student_number", f"学号中的学院代码 {number[4:6]} 与所在学院 {college_code} 不一致")
    if not number.startswith(class_code):
        raise RecordError("student_number", f"学号 {number} 与班级 {class_code} 不一致")


def check_national_id(national_id: str, gender: str, birth_date: date | None) -> list[str]:
    """R13: check digit, birth date and gender digit must agree with the record.

    Returns warnings; raises RecordError for errors. python-stdnum's birthplace check
    rejects some real numbers (newer or older division codes, residence permits
    81/82/83) and may raise KeyError, so a birthplace failure is only a warning.
    """
    return check_normalised_id(national_id.strip().upper(), gender, birth_date, date.today())


def check_normalised_id(value: str, gender: str, birth_date: date | None, today: date) -> list[str]:
    """`check_national_id` for a number already stripped and upper-cased, born no later than `today`:
    a record's checks look at up to three numbers and ask the clock once."""
    if not ID_NUMBER.fullmatch(value):
        raise RecordError("national_id", "身份证件号应为18位，最后一位可为数字或X")
    if ric.calc_check_digit(value) != value[17]:  # takes the full number
        raise RecordError("national_id", "身份证件号校验位不正确")
    born = _id_birth_date(value[6:14])
    if born is None:
        raise RecordError("national_id", "身份证件号中的出生日期无效")
    if born > today:
        raise RecordError("national_id", "身份证件号中的出生日期晚于今天")
    if birth_date is not None and born != birth_date:
        raise RecordError("national_id", "身份证件号中的出生日期与出生日期字段不一致")
    id_gender = "1" if int(value[16]) % 2 == 1 else "2"
    if id_gender != gender:
        raise RecordError("national_id", "身份证件号中的性别位与性别字段不一致")
    if not _birthplace_known(value[:6], born.year):
        return ["身份证件号的出生地代码未能核对（可能为新旧行政区划或港澳台居住证），请人工确认"]
    return []


@lru_cache(maxsize=65536)
def _id_birth_date(digits: str) -> date | None:
    """The yyyymmdd part of an ID number as a date, None if no such day: cached, birth dates repeat in bulk."""
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


@lru_cache(maxsize=65536)
def _birthplace_known(area: str, year: int) -> bool:
    """stdnum's birthplace check depends only on the division code and the birth year: cached for bulk imports."""
    try:
        ric.get_birth_place(f"{area}{year:04d}01010000")
    except (stdnum_exceptions.ValidationError, KeyError, ValueError):
        return False
    return True


def mask_national_id(national_id: str | None) -> str | None:
    """Keep the first 6 and last 4 characters: enough to tell records apart."""
    if not national_id:
        return national_id
    return national_id[:6] + "*" * (len(national_id) - 10) + national_id[-4:]

