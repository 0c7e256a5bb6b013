"""Every rule of the shared record validation (domain/record.py) and the code tables."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from stdnum.cn import ric

from services.roster.domain import duplicates as dup
from services.roster.domain.codes import DIVISIONS, CodeBook, CodeEdit, valid_code
from services.roster.domain.record import FIELDS, check_record, id_number_problem
from services.roster.tests.factories import national_id

BOOK = CodeBook.standard()
TODAY = date(2026, 11, 24)
BORN = date(2005, 3, 14)


def row(**changes: Any) -> dict[str, Any]:
    base = {
        "student_number": "202301010101", "name": "张三", "gender": "男", "birth_date": "2005-03-14",
        "id_type": "居民身份证", "national_id": national_id(BORN, "1"), "ethnicity": "汉族",
        "entry_month": "2023-09", "class_code": "2023010101",
    }
    base.update(changes)
    return base


def errors(**changes: Any) -> dict[str, str]:
    check = check_record(row(**changes), BOOK, today=TODAY)
    return {e.field: e.message for e in check.errors}


def test_a_valid_record_is_typed_for_storage() -> None:
    check = check_record(row(political_status="03", native_place="110101", guardian1_name="张父",
                             guardian1_relation="父亲", guardian1_id_number=national_id(date(1975, 1, 2), "1", 7),
                             expected_graduation="2027/6/30", program_years="4", phone="138 0013 8000"),
                         BOOK, today=TODAY)
    assert check.ok, check.errors
    v = check.values
    assert v["gender"] == "1" and v["ethnicity"] == "01" and v["id_type"] == "1" and v["political_status"] == "03"
    assert v["birth_date"] == BORN and v["expected_graduation"] == date(2027, 6, 30)
    assert v["college_code"] == "01" and v["phone"] == "13800138000"
    assert v["guardians"] == [{"name": "张父", "relation": "1", "id_type": "1",
                               "id_number": national_id(date(1975, 1, 2), "1", 7), "phone": None}]


def test_codes_are_accepted_as_code_or_label() -> None:
    assert check_record(row(gender="1", ethnicity="01", id_type="1"), BOOK, today=TODAY).ok


@pytest.mark.parametrize("key", ["student_number", "name", "gender", "birth_date", "id_type", "ethnicity",
                                 "entry_month", "class_code"])
def test_required(key: str) -> None:
    assert "不能为空" in errors(**{key: " "})[key]


def test_unknown_code_and_division() -> None:
    found = errors(ethnicity="火星族", native_place="999999", health="很好")
    assert "不在代码表中" in found["ethnicity"] and "不在代码表中" in found["health"]
    assert "行政区划代码" in found["native_place"]


@pytest.mark.parametrize("key,value,fragment", [
    ("birth_date", "2005-13-01", "yyyy-mm-dd"),
    ("birth_date", "14/03/2005", "yyyy-mm-dd"),
    ("entry_month", "2023-13", "yyyy-mm"),
    ("phone", "12345", "手机号"),
    ("email", "a@b", "格式"),
    ("postcode", "1000", "6位"),
    ("program_years", "10", "1到8"),
    ("name", "张3", "汉字"),
    ("exam_number", "abc", "考生号"),
    ("name", "张" * 65, "不能超过64"),
    ("guardian1_id_number", "1" * 33, "不能超过32"),  # a guardian's field refused, not a crash
])
def test_formats(key: str, value: str, fragment: str) -> None:
    assert fragment in errors(**{key: value})[key]


def test_other_date_and_number_forms_are_accepted() -> None:
    check = check_record(row(birth_date="2005年3月14日", entry_month="2023/9", phone="010-62751234",
                             exam_number="23110101123456"), BOOK, today=TODAY)
    assert check.ok, check.errors
    assert check.values["entry_month"] == "2023-09"


def test_student_number_rule_r6() -> None:
    assert "12位" in errors(student_number="2023010101")["student_number"]
    assert "班级" in errors(student_number="202301010201")["student_number"]


def test_future_birth_date_is_an_error() -> None:
    found = errors(birth_date="2027-01-01", national_id=national_id(date(2027, 1, 1), "1"))
    assert "晚于今天" in found["birth_date"]


def test_id_check_digit() -> None:
    good = national_id(BORN, "1")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert "校验位" in errors(national_id=bad)["national_id"]
    assert "18位" in errors(national_id=good[:-1])["national_id"]


def test_id_birth_date_and_gender_must_match_the_record() -> None:
    assert "出生日期" in errors(birth_date="2005-03-15")["national_id"]
    assert "性别" in errors(gender="女")["national_id"]


def test_lower_case_x_is_normalised() -> None:
    body = "11010120050314001"
    number = body + ric.calc_check_digit(body + "0")
    if number[-1] != "X":  # find a sequence whose check digit is X
        for seq in range(2, 999, 2):
            body = f"11010120050314{seq + 1:03d}"
            number = body + ric.calc_check_digit(body + "0")
            if number[-1] == "X":
                break
    check = check_record(row(national_id=number.lower()), BOOK, today=TODAY)
    assert check.ok and check.values["national_id"] == number


def test_stdnum_birthplace_failure_is_only_a_warning() -> None:
    # 110103 (崇文区) was abolished in 2010: stdnum rejects it for people born later, yet such
    # numbers exist (issued by the old office); 999999 is no division at all (stdnum raises).
    for area in ("110103", "999999"):
        number = national_id(date(2012, 5, 6), "2", area=area)
        check = check_record(row(national_id=number, birth_date="2012-05-06", gender="女"), BOOK, today=TODAY)
        assert check.ok, (area, check.errors)
        assert [w.field for w in check.warnings] == ["national_id"], area


def test_residence_permits_81_82_83() -> None:
    permit = national_id(BORN, "1", area="810000")
    check = check_record(row(id_type="港澳台居民居住证", national_id=permit), BOOK, today=TODAY)
    assert check.ok and check.warnings == []
    assert "居住证" in errors(national_id=permit)["national_id"]  # typed as a resident ID by mistake
    assert "810000" in errors(id_type="港澳台居民居住证")["national_id"]


def test_other_document_types() -> None:
    assert check_record(row(id_type="护照", national_id="E12345678"), BOOK, today=TODAY).ok
    assert "4到32位" in errors(id_type="护照", national_id="E 1")["national_id"]
    assert "不能为空" in errors(id_type="护照", national_id="")["national_id"]


def test_type_other_needs_a_guardian_id_r13() -> None:
    found = errors(id_type="其他", national_id="")
    assert "监护人身份证件号" in found["guardian1_id_number"]
    assert "应留空" in errors(id_type="其他")["national_id"]
    guardian = national_id(date(1978, 2, 3), "2", 9)
    check = check_record(row(id_type="其他", national_id="", guardian2_name="李母", guardian2_id_number=guardian),
                         BOOK, today=TODAY)
    assert check.ok, check.errors
    assert check.values["guardians"][0]["id_number"] == guardian


def test_guardian_id_is_checked_and_needs_a_name() -> None:
    found = errors(guardian1_id_number="110101197801010000")
    assert "校验位" in found["guardian1_id_number"] and "姓名" in found["guardian1_name"]
    assert id_number_problem("123") is not None


def test_org_tree_checks() -> None:
    classes = {"2023010101": "0101"}
    assert check_record(row(), BOOK, today=TODAY, classes=classes).values["major_code"] == "0101"
    check = check_record(row(class_code="2023010109", student_number="202301010901"), BOOK, today=TODAY,
                         classes=classes)
    assert "不存在" in {e.field: e.message for e in check.errors}["class_code"]
    check = check_record(row(major_code="0102"), BOOK, today=TODAY, classes=classes)
    assert "不一致" in {e.field: e.message for e in check.errors}["major_code"]


def test_date_order() -> None:
    assert "早于出生日期" in errors(entry_month="2004-09")["entry_month"]
    assert "晚于入学年月" in errors(expected_graduation="2023-07-01")["expected_graduation"]


def test_every_field_has_a_unique_header() -> None:
    assert len({f.header for f in FIELDS}) == len(FIELDS) == len({f.key for f in FIELDS})


# ---- code tables --------------------------------------------------------------------------------


def test_standard_tables() -> None:
    assert len([c for c in BOOK["ethnicity"].codes if int(c) <= 56]) == 56
    assert BOOK["ethnicity"].label_of("56") == "基诺族"
    assert BOOK["political_status"].label_of("13") == "群众"
    assert BOOK["gender"].choices() == ["男", "女"]
    assert BOOK[DIVISIONS].label_of("110101") == "北京市东城区"
    assert len(BOOK[DIVISIONS].codes) > 3000


def test_edits_add_rename_and_retire_codes() -> None:
    book = CodeBook.standard([CodeEdit("health", "7", "其他"), CodeEdit("ethnicity", "01", "汉"),
                              CodeEdit("household_type", "9", "其他", active=False),
                              CodeEdit(DIVISIONS, "110199", "北京市新区")])
    assert book["health"].resolve("其他") == "7"
    assert book["ethnicity"].resolve("汉") == "01" and book["ethnicity"].resolve("汉族") is None
    assert book["household_type"].resolve("9") is None and "其他" not in book["household_type"].choices()
    assert check_record(row(native_place="110199", ethnicity="01"), book, today=TODAY).ok
    assert CodeBook.standard()["ethnicity"].label_of("01") == "汉族"  # edits never leak into the standard


def test_valid_code() -> None:
    assert valid_code("health", "7", "其他") is None
    assert valid_code("health", "", "x") and valid_code("health", "7", " ") and valid_code(DIVISIONS, "11", "x")


def test_duplicate_keys() -> None:
    assert dup.file_keys({"student_number": "1", "national_id": "X"}) == [("no:1", "student_number"),
                                                                          ("id:X", "national_id")]
    assert dup.file_keys({"name": "张三", "gender": "1", "birth_date": BORN}) == [
        ("ngb:张三|1|2005-03-14", "name")]
