"""The full student record (学籍信息) and the one validation every entry path uses (R6, R13, R14).

`check_record` takes the values as an operator typed them (strings; code fields as a code
or its label) and returns the typed record plus every problem found, per field, so that a
spreadsheet can mark each bad cell and a form each bad input. Nothing here touches a database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from services.roster.domain.codes import DIVISIONS, CodeBook
from services.roster.domain.students import (
    ID_NUMBER,
    RecordError,
    check_normalised_id,
    check_student_number,
    is_provisional,
)

RESIDENT_ID = "1"  # 居民身份证
RESIDENCE_PERMIT = "7"  # 港澳台居民居住证: ID-shaped numbers starting 810000/820000/830000
NO_DOCUMENT = "9"  # 其他: no usable document, a guardian's ID number is required (R13)
_PERMIT_PREFIXES = ("810000", "820000", "830000")
GUARDIAN_SLOTS = (1, 2)

_NAME = re.compile(r"^[\u3400-\u9fff\uf900-\ufaffA-Za-z·•．. ]{1,64}$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}(-\d{1,6})?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_POSTCODE = re.compile(r"^\d{6}$")
_DOCUMENT = re.compile(r"^[0-9A-Za-z()（）-]{4,32}$")
_EXAM_NUMBER = re.compile(r"^\d{8,20}$")
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_MONTH = re.compile(r"^(\d{4})[-/.年](\d{1,2})月?(?:[-/.]\d{1,2}日?)?$")
_YEARS = re.compile(r"^\d(\.\d)?$")


@dataclass(frozen=True)
class Field:
    key: str
    header: str
    kind: str  # text | name | code | division | date | month | id | phone | email | postcode | years | number
    table: str | None = None
    required: bool = False
    max_len: int = 64
    note: str = ""
    text: bool = False  # kept as text in spreadsheets (leading zeros, long digit strings)
    width: int = 14


def _guardian_fields(n: int) -> tuple[Field, ...]:
    return (
        Field(f"guardian{n}_name", f"监护人{n}姓名", "name"),
        Field(f"guardian{n}_relation", f"监护人{n}关系", "code", "relation"),
        Field(f"guardian{n}_id_type", f"监护人{n}身份证件类型", "code", "id_type", note="留空按居民身份证"),
        Field(f"guardian{n}_id_number", f"监护人{n}身份证件号", "text", max_len=32, text=True, width=22),
        Field(f"guardian{n}_phone", f"监护人{n}联系电话", "phone", text=True),
    )


FIELDS: tuple[Field, ...] = (
    Field("student_number", "学号", "text", required=True, text=True, width=16,
          note="12位：入学年份4位+学院2位+专业2位+班级2位+序号2位"),
    Field("exam_number", "考生号", "text", max_len=32, text=True, width=18, note="高考报名号"),
    Field("name", "姓名", "name", required=True),
    Field("gender", "性别", "code", "gender", required=True, width=8),
    Field("birth_date", "出生日期", "date", required=True, note="格式 yyyy-mm-dd"),
    Field("id_type", "身份证件类型", "code", "id_type", required=True, width=18),
    Field("national_id", "身份证件号", "id", max_len=32, text=True, width=22,
          note="居民身份证18位；证件类型为“其他”时留空并填写监护人身份证件号"),
    Field("ethnicity", "民族", "code", "ethnicity", required=True),
    Field("political_status", "政治面貌", "code", "political_status", width=18),
    Field("native_place", "籍贯", "division", DIVISIONS, text=True, note="6位行政区划代码"),
    Field("birthplace", "出生地", "division", DIVISIONS, text=True, note="6位行政区划代码"),
    Field("household_division", "户口所在地", "division", DIVISIONS, text=True, note="6位行政区划代码"),
    Field("household_type", "户口性质", "code", "household_type"),
    Field("hmt_overseas", "港澳台侨外", "code", "hmt_overseas"),
    Field("health", "健康状况", "code", "health"),
    Field("entry_month", "入学年月", "month", required=True, note="格式 yyyy-mm"),
    Field("entry_mode", "入学方式", "code", "entry_mode"),
    Field("study_mode", "就读方式", "code", "study_mode"),
    Field("student_source", "学生来源", "code", "student_source"),
    Field("class_code", "班号", "text", required=True, max_len=16, text=True, note="班级代码，如 2023010101"),
    Field("major_code", "专业代码", "text", max_len=16, text=True, note="留空按班级所属专业"),
    Field("level", "层次", "code", "level"),
    Field("program_years", "学制", "years", width=8, note="年，如 4 或 3.5"),
    Field("study_form", "学习形式", "code", "study_form"),
    Field("expected_graduation", "预计毕业日期", "date", note="格式 yyyy-mm-dd"),
    Field("phone", "联系电话", "phone", text=True),
    Field("email", "电子邮箱", "email", max_len=128, width=22),
    Field("postcode", "邮政编码", "postcode", text=True, width=10),
    Field("address", "现住址", "text", max_len=200, width=30),
    Field("home_address", "家庭住址", "text", max_len=200, width=30),
    Field("mailing_address", "通信地址", "text", max_len=200, width=30),
    *(f for n in GUARDIAN_SLOTS for f in _guardian_fields(n)),
)
FIELD_BY_KEY = {f.key: f for f in FIELDS}
GUARDIAN_KEYS = ("name", "relation", "id_type", "id_number", "phone")


@dataclass
class RecordCheck:
    values: dict[str, object] = field(default_factory=dict)  # typed, ready to store
    errors: list[RecordError] = field(default_factory=list)
    warnings: list[RecordError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, key: str, message: str) -> None:
        self.errors.append(RecordError(key, message))


def check_record(
    raw: Mapping[str, object],
    book: CodeBook,
    *,
    today: date | None = None,
    classes: Mapping[str, str | None] | None = None,
) -> RecordCheck:
    """Check one record; `classes` (class code → its major code) adds the org-tree checks."""
    today = today or date.today()
    result = RecordCheck()
    values = result.values
    errors = result.errors
    tables = book.tables  # book[name] without a Python call per code field
    get = raw.get
    for key, f, required, max_len, table, typed, empty, too_long in _PLAN:
        value = get(key)
        text = value.strip() if type(value) is str else _str(value)
        if not text:
            values[key] = None
            if required:
                errors.append(RecordError(key, empty))
            continue
        if len(text) > max_len:
            errors.append(RecordError(key, too_long))
            continue
        if table is not None:  # code and division fields (most of a record), resolved inline
            code = values[key] = tables[table].resolve(text)
            if code is None:
                _not_in_table(f, text, result)
        elif typed is None:
            values[key] = text
        else:
            values[key] = typed(f, text, book, result)

    _check_numbers(values, result)
    _check_documents(values, result)
    _check_org(values, classes, result)
    _check_dates(values, today, result)
    pop = values.pop
    # pop(key, None): a value refused as too long was never set
    guardians = [dict(zip(GUARDIAN_KEYS, [pop(k, None) for k in keys], strict=True)) for keys in _GUARDIAN_FIELD_KEYS]
    values["guardians"] = [g for g in guardians if any(g.values())]
    return result


def _str(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


# ---- per-kind checks: each takes the field, its stripped non-empty text, the code book and the
# result to add errors to, and returns the typed value ------------------------------------------


def _name(f: Field, text: str, book: CodeBook, result: RecordCheck) -> object:
    if not _NAME.match(text):
        result.error(f.key, f"{f.header}只能包含汉字、字母、间隔号“·”和空格")
    return text


def _not_in_table(f: Field, text: str, result: RecordCheck) -> None:
    what = "行政区划代码" if f.kind == "division" else "代码表"
    result.error(f.key, f"{f.header}“{text}”不在{what}中")


def _date(f: Field, text: str, book: CodeBook, result: RecordCheck) -> object:
    parsed = _cached_date(text)
    if parsed is None:
        result.error(f.key, f"{f.header}格式应为 yyyy-mm-dd")
    return parsed


def _month(f: Field, text: str, book: CodeBook, result: RecordCheck) -> object:
    month = _parse_month(text)
    if month is None:
        result.error(f.key, f"{f.header}格式应为 yyyy-mm")
    return month


# A file's months repeat (entry months): each distinct text parsed once.
@lru_cache(maxsize=1024)
def _parse_month(text: str) -> str | None:
    m = _MONTH.match(text)
    if not m or not 1 <= int(m.group(2)) <= 12:
        return None
    return f"{m.group(1)}-{int(m.group(2)):02d}"


def _phone(f: Field, text: str, book: CodeBook, result: RecordCheck) -> object:
    compact = text.replace(" ", "")
    if not (_MOBILE.match(compact) or _LANDLINE.match(compact)):
        result.error(f.key, f"{f.header}应为11位手机号或带区号的固定电话")
    return compact


def _email(f: Field, text: str, book: CodeBook, result: RecordCheck) -> object:
    if not _EMAIL.match(text):
        result.error(f.key, f"{f.header}格式不正确")
    return text


def _postcode(f: Field, text: str, book: CodeBook, result: RecordCheck) -> object:
    if not _POSTCODE.match(text):
        result.error(f.key, f"{f.header}应为6位数字")
    return text


def _years(f: Field, text: str, book: CodeBook, result: RecordCheck) -> object:
    if not _YEARS.match(text) or not 1 <= float(text) <= 8:
        result.error(f.key, f"{f.header}应为1到8之间的年数，如 4 或 3.5")
    return text


def _unknown(f: Field, text: str, book: CodeBook, result: RecordCheck) -> object:
    raise ValueError(f"unknown field kind {f.kind}")


_TYPED: dict[str, Callable[[Field, str, CodeBook, RecordCheck], object] | None] = {
    "text": None,  # kept as typed
    "id": None,  # checked with the document type in _check_documents
    "name": _name,
    "code": None,  # resolved in check_record's loop
    "division": None,
    "date": _date,
    "month": _month,
    "phone": _phone,
    "email": _email,
    "postcode": _postcode,
    "years": _years,
}
_CODED = ("code", "division")
# Per field, worked out once: (key, field, required, max_len, code table name or None, typed check or None,
# empty message, too-long message).
_PLAN = tuple(
    (f.key, f, f.required, f.max_len, (f.table or "") if f.kind in _CODED else None, _TYPED.get(f.kind, _unknown),
     f"{f.header}不能为空", f"{f.header}不能超过{f.max_len}个字符")
    for f in FIELDS
)
# Per guardian slot: the record's field keys for GUARDIAN_KEYS, in that order.
_GUARDIAN_FIELD_KEYS = tuple(tuple(f"guardian{n}_{k}" for k in GUARDIAN_KEYS) for n in GUARDIAN_SLOTS)


def parse_date(text: str) -> date | None:
    m = _DATE.match(text) or _COMPACT_DATE.match(text)
    if not m:
        return None
    year, month, day = m.groups()
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


# A file's dates repeat (birth dates, graduation dates): each distinct text parsed once.
_cached_date = lru_cache(maxsize=8192)(parse_date)


def _has_error(result: RecordCheck, key: str) -> bool:
    return any(e.field == key for e in result.errors)


def _check_numbers(values: dict[str, object], result: RecordCheck) -> None:
    number, klass = values.get("student_number"), values.get("class_code")
    exam = values.get("exam_number")
    provisional = isinstance(number, str) and is_provisional(number, exam if isinstance(exam, str) else None)
    if isinstance(number, str) and isinstance(klass, str) and not provisional:
        try:
            check_student_number(number, number[4:6], klass)
        except RecordError as exc:
            result.errors.append(exc)
    if isinstance(number, str):
        # A provisional number (the 考生号, R3) says nothing of the college: the class code does (R6).
        values["college_code"] = klass[4:6] if provisional and isinstance(klass, str) else number[4:6]
    if isinstance(exam, str) and not _EXAM_NUMBER.match(exam):
        result.error("exam_number", "考生号应为8到20位数字")


def _check_documents(values: dict[str, object], result: RecordCheck) -> None:
    """R13: the student's document, and guardians' ID numbers (required when the student has none)."""
    today = date.today()  # for the ID numbers' birth dates: asked once for the up to three numbers here
    id_type, number = values.get("id_type"), values.get("national_id")
    if isinstance(number, str):
        number = values["national_id"] = number.upper()
    if id_type in (RESIDENT_ID, RESIDENCE_PERMIT):
        if not number:
            result.error("national_id", "身份证件号不能为空")
        else:
            _check_id_number(values, result, str(id_type), str(number), today)
    elif id_type == NO_DOCUMENT:
        if number:
            result.error("national_id", "证件类型为“其他”时身份证件号应留空")
        if not any(values.get(f"guardian{n}_id_number") for n in GUARDIAN_SLOTS):
            result.error("guardian1_id_number", "学生无身份证件时必须填写监护人身份证件号")
    elif id_type and not number:
        result.error("national_id", "身份证件号不能为空")
    elif id_type and not _DOCUMENT.match(str(number)):
        result.error("national_id", "证件号码应为4到32位字母或数字")
    for n, key, type_key, name_key in _GUARDIAN_DOCUMENT_KEYS:
        value = values.get(key)
        if not value:
            continue
        value = values[key] = str(value).upper()
        guardian_type = values.get(type_key) or RESIDENT_ID
        values[type_key] = guardian_type
        if guardian_type in (RESIDENT_ID, RESIDENCE_PERMIT):
            problem = _id_number_problem(value, today)
            if problem:
                result.error(key, problem)
        elif not _DOCUMENT.match(value):
            result.error(key, "证件号码应为4到32位字母或数字")
        if not values.get(name_key):
            result.error(name_key, f"填写了监护人{n}身份证件号时姓名不能为空")


# Per guardian slot: (slot, its ID number, ID type and name field keys).
_GUARDIAN_DOCUMENT_KEYS = tuple(
    (n, f"guardian{n}_id_number", f"guardian{n}_id_type", f"guardian{n}_name") for n in GUARDIAN_SLOTS
)


def id_number_problem(value: str) -> str | None:
    """Shape and check digit only (for people whose birth date and gender the record does not hold)."""
    return _id_number_problem(value, date.today())


def _id_number_problem(value: str, today: date) -> str | None:
    if not ID_NUMBER.fullmatch(value):
        return "身份证件号应为18位，最后一位可为数字或X"
    try:
        # Already as check_national_id() would make it: digits (none has a case or is a space) and X.
        check_normalised_id(value, "1" if int(value[16]) % 2 else "2", None, today)
    except RecordError as exc:
        return exc.message
    return None


def _check_id_number(values: dict[str, object], result: RecordCheck, id_type: str, number: str,
                     today: date) -> None:
    permit = number.startswith(("81", "82", "83"))
    if id_type == RESIDENT_ID and permit:
        result.error("national_id", "81/82/83开头的号码是港澳台居民居住证，请将证件类型选为“港澳台居民居住证”")
        return
    if id_type == RESIDENCE_PERMIT and not number.startswith(_PERMIT_PREFIXES):
        result.error("national_id", "港澳台居民居住证号码应以810000、820000或830000开头")
        return
    gender = values.get("gender")
    birth = values.get("birth_date") if not (result.errors and _has_error(result, "birth_date")) else None
    try:
        warnings = check_normalised_id(
            number.strip().upper(), gender if isinstance(gender, str) else "",
            birth if isinstance(birth, date) else None, today,
        )
    except RecordError as exc:
        if gender or "性别" not in exc.message:  # without a gender there is nothing to compare with
            result.errors.append(exc)
        return
    if warnings and not permit:  # stdnum knows no birthplace for a permit: expected, not worth a warning
        result.warnings.extend(RecordError("national_id", w) for w in warnings)


def _check_org(values: dict[str, object], classes: Mapping[str, str | None] | None, result: RecordCheck) -> None:
    klass = values.get("class_code")
    if classes is None or not isinstance(klass, str):
        return
    if klass not in classes:
        result.error("class_code", f"班级 {klass} 不存在")
        return
    major = classes[klass]
    given = values.get("major_code")
    if given and major and given != major:
        result.error("major_code", f"专业代码 {given} 与班级 {klass} 所属专业 {major} 不一致")
    if not given:
        values["major_code"] = major


def _check_dates(values: dict[str, object], today: date, result: RecordCheck) -> None:
    birth = values.get("birth_date")
    if isinstance(birth, date):
        if birth > today:
            result.error("birth_date", "出生日期不能晚于今天")
        elif birth.year < 1900:
            result.error("birth_date", "出生日期早于1900年")
    entry, graduation = values.get("entry_month"), values.get("expected_graduation")
    if isinstance(entry, str) and isinstance(birth, date) and entry < birth.isoformat()[:7]:
        result.error("entry_month", "入学年月早于出生日期")
    if isinstance(entry, str) and isinstance(graduation, date) and graduation.isoformat()[:7] <= entry:
        result.error("expected_graduation", "预计毕业日期应晚于入学年月")
