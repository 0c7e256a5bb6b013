from datetime import date

from services.transfer.domain.students import (
    birth_date_of_id,
    is_newer_change,
    match_student,
    may_transfer_out,
    parse_date,
    transfer_out_refusal,
)

RECORD = {"name": "张三", "birth_date": "2005-01-01", "national_id": "11010120050101001X",
          "national_student_id": "G11010120050101001X"}
REQUEST = {"national_student_id": "G11010120050101001X", "name": "张三", "gender": "1",
           "birth_date": "2005-01-01", "id_type": "1", "id_number": "11010120050101001X",
           "outflow_student_number": "202301010105"}


def test_a_request_that_agrees_with_the_record_matches() -> None:
    assert match_student(REQUEST, RECORD) == []


def test_writing_differences_are_not_mismatches() -> None:
    request = {**REQUEST, "name": " 张　三 ", "birth_date": "20050101", "id_number": "11010120050101001x",
               "national_student_id": "g11010120050101001x"}
    assert match_student(request, RECORD) == []
    assert match_student({**REQUEST, "birth_date": "2005/1/1"}, {**RECORD, "birth_date": date(2005, 1, 1)}) == []


def test_minority_name_separators_are_equivalent() -> None:
    record = {**RECORD, "name": "阿卜杜·热合曼"}
    for written in ("阿卜杜•热合曼", "阿卜杜.热合曼", "阿卜杜・热合曼", "阿卜杜．热合曼"):
        assert match_student({**REQUEST, "name": written}, record) == [], written


def test_each_disagreeing_field_is_reported() -> None:
    request = {**REQUEST, "name": "张四", "birth_date": "2005-01-02", "id_number": "110101200501020018",
               "national_student_id": "G110101200501020018"}
    assert match_student(request, RECORD) == ["name", "birth_date", "id_number", "national_student_id"]


def test_name_and_birth_date_that_cannot_be_confirmed_are_mismatches() -> None:
    assert match_student({**REQUEST, "name": ""}, RECORD) == ["name"]
    assert match_student({k: v for k, v in REQUEST.items() if k != "birth_date"}, RECORD) == ["birth_date"]
    assert match_student({**REQUEST, "birth_date": "2005-02-30"}, RECORD) == ["birth_date"]
    assert match_student(REQUEST, {**RECORD, "name": None}) == ["name"]


def test_the_record_birth_date_falls_back_to_the_id_number() -> None:
    record = {k: v for k, v in RECORD.items() if k != "birth_date"}
    assert match_student(REQUEST, record) == []
    assert match_student({**REQUEST, "birth_date": "2005-01-09"}, record) == ["birth_date"]


def test_the_id_number_counts_only_when_it_is_the_students_resident_id() -> None:
    guardian = {**REQUEST, "id_type": "9", "id_number": "110101197501010011"}  # R13: guardian's ID
    assert match_student(guardian, {**RECORD, "national_id": None}) == []
    assert match_student({**REQUEST, "id_number": None}, RECORD) == ["id_number"]
    assert match_student(REQUEST, {**RECORD, "national_id": None}) == ["id_number"]


def test_national_student_id_is_compared_only_when_both_sides_have_one() -> None:
    assert match_student({**REQUEST, "national_student_id": None}, RECORD) == []
    assert match_student(REQUEST, {**RECORD, "national_student_id": None}) == []


def test_dates_are_read_in_common_forms() -> None:
    assert parse_date("2005-01-01") == parse_date("20050101") == parse_date("2005.1.1") == date(2005, 1, 1)
    assert parse_date("2005-13-01") is None
    assert parse_date("去年") is None
    assert parse_date(None) is None


def test_birth_date_is_read_from_an_18_digit_id_number() -> None:
    assert birth_date_of_id("11010120050101001X") == date(2005, 1, 1)
    assert birth_date_of_id("110101050101001") is None  # old 15-digit numbers are not read
    assert birth_date_of_id(None) is None


def test_only_students_on_the_roll_may_transfer_out() -> None:
    assert may_transfer_out(left=False)
    assert not may_transfer_out(left=True)
    assert transfer_out_refusal(left=True) == "学生已离校，不能办理转出"
    assert transfer_out_refusal(left=False) is None


def test_only_newer_changes_apply() -> None:
    assert is_newer_change(None, 1)
    assert is_newer_change(4, 5)
    assert not is_newer_change(5, 5)
    assert not is_newer_change(5, 3)
