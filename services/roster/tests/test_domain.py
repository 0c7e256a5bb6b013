from datetime import date, timedelta

import pytest

from services.roster.domain import status as st
from services.roster.domain.clearance import (
    ClearanceCompleted,
    ClearanceInvalid,
    ClearanceRevoked,
    event_id_of,
    identity_mismatch,
    parse,
)
from services.roster.domain.students import (
    RecordError,
    check_national_id,
    check_student_number,
    mask_national_id,
)
from services.roster.tests.factories import clearance_completed, clearance_revoked, national_id

EID = "8c3f5b7e-2a4d-4c1e-9a77-0d6f3c2b1a90"


def test_left_statuses_release_and_deactivate() -> None:
    for status in ("graduated", "completed", "attendance", "withdrawn", "expelled", "deceased",
                   "transferred_out"):
        assert st.has_left(status)
    for status in ("enrolled", "suspended", "military", "not_reported", "visiting"):
        assert not st.has_left(status)


def test_clearance_outcomes_map_to_statuses() -> None:
    assert st.CLEARANCE_OUTCOMES == {"graduated": "graduated", "completed": "completed",
                                     "attendance": "attendance"}
    assert st.label("attendance") == "肄业"


def test_only_enrolled_students_graduate() -> None:
    assert st.graduation_refusal("enrolled") is None
    assert "休学" in (st.graduation_refusal("suspended") or "")


def test_student_number_follows_r6() -> None:
    check_student_number("202301010105", "01", "2023010101")
    with pytest.raises(RecordError, match="12位"):
        check_student_number("20230101015", "01", "2023010101")
    with pytest.raises(RecordError, match="学院代码"):
        check_student_number("202302010105", "01", "2023020101")
    with pytest.raises(RecordError, match="班级"):
        check_student_number("202301010205", "01", "2023010101")


def test_national_id_checks() -> None:
    born = date(2005, 3, 14)
    good = national_id(born, "1")
    assert check_national_id(good, "1", born) == []
    with pytest.raises(RecordError, match="校验位"):
        check_national_id(good[:17] + ("0" if good[17] != "0" else "1"), "1", born)
    with pytest.raises(RecordError, match="性别"):
        check_national_id(good, "2", born)
    with pytest.raises(RecordError, match="出生日期"):
        check_national_id(good, "1", born + timedelta(days=1))
    future = national_id(date.today() + timedelta(days=400), "1")
    with pytest.raises(RecordError, match="晚于今天"):
        check_national_id(future, "1", None)


@pytest.mark.parametrize("area", ["830000", "330383"])  # Taiwan residence permit; 龙港市 (2019)
def test_unknown_birthplace_is_a_warning_not_an_error(area: str) -> None:
    born = date(2004, 1, 2)
    permit = national_id(born, "2", area=area)
    warnings = check_national_id(permit, "2", born)
    assert warnings and "出生地" in warnings[0]


def test_mask_keeps_ends() -> None:
    assert mask_national_id("110101200501010019") == "110101********0019"
    assert mask_national_id(None) is None


def test_clearance_bodies_parse_exactly_as_the_contract_says() -> None:
    done = parse("clearance.completed", clearance_completed("202301010105", EID))
    assert isinstance(done, ClearanceCompleted) and done.new_status == "graduated"
    assert done.occurred_at.utcoffset() is not None
    rev = parse("clearance.revoked", clearance_revoked("202301010105", EID, revokes=EID))
    assert isinstance(rev, ClearanceRevoked) and rev.revokes_event_id == EID
    # items may hold other keys; top-level extras are tolerated
    extra = {**clearance_completed("202301010105", EID), "items": {"gym": "ok"}, "x": 1}
    assert isinstance(parse("clearance.completed", extra), ClearanceCompleted)


@pytest.mark.parametrize("mutate", [
    lambda b: b.pop("event_id"),
    lambda b: b.update(outcome="expelled"),
    lambda b: b.update(occurred_at="2027-06-28T10:15:00"),  # no offset
    lambda b: b.update(event_id="not-a-uuid"),
])
def test_invalid_clearance_bodies_are_refused(mutate) -> None:  # type: ignore[no-untyped-def]
    body = clearance_completed("202301010105", EID)
    mutate(body)
    with pytest.raises(ClearanceInvalid, match="格式不符合约定"):
        parse("clearance.completed", body)


def test_event_id_of_survives_invalid_bodies() -> None:
    assert event_id_of({"event_id": EID, "junk": True}) == EID
    assert event_id_of({"event_id": "x"}) is None
    assert event_id_of(["not", "a", "dict"]) is None


def test_identity_mismatch() -> None:
    assert identity_mismatch(None, "110101200501010019") is None
    assert identity_mismatch("110101200501010019", "110101200501010019") is None
    assert identity_mismatch("11010120050101001X", "110101200501010019")
