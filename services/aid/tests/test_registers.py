from services.aid.domain.registers import (
    StatusChange,
    enrolment_refusal,
    is_enrolled,
    is_newer_change,
    stop_instalments_after,
)


def test_enrolled_means_on_the_roll_and_reported() -> None:
    assert is_enrolled("enrolled", left=False)
    assert is_enrolled("suspended", left=False)  # 休学 keeps the record (R8)


def test_students_who_left_are_not_enrolled() -> None:
    assert not is_enrolled("graduated", left=True)
    assert enrolment_refusal("withdrawn", left=True) == "学生已离校，不在在校生库中"


def test_students_who_did_not_report_are_not_enrolled() -> None:
    assert not is_enrolled("not_reported", left=False)
    assert "未报到" in (enrolment_refusal("not_reported", left=False) or "")


def test_leaving_stops_instalments() -> None:
    assert stop_instalments_after(StatusChange(7, "graduated", left=True), stopped=False)
    assert stop_instalments_after(StatusChange(8, "deceased", left=True), stopped=True)


def test_a_change_that_keeps_the_student_leaves_the_decision_alone() -> None:
    assert not stop_instalments_after(StatusChange(7, "suspended", left=False), stopped=False)
    assert stop_instalments_after(StatusChange(9, "visiting", left=False), stopped=True)


def test_revoking_the_departure_lifts_the_stop() -> None:
    back = StatusChange(10, "enrolled", left=False, revokes_change_id=7)
    assert not stop_instalments_after(back, stopped=True)


def test_revoking_into_another_departure_keeps_the_stop() -> None:
    # e.g. 毕业 revoked and replaced by 结业: still gone.
    assert stop_instalments_after(StatusChange(11, "completed", left=True, revokes_change_id=7),
                                  stopped=True)


def test_only_newer_changes_apply() -> None:
    assert is_newer_change(None, 1)
    assert is_newer_change(4, 5)
    assert not is_newer_change(5, 5)
    assert not is_newer_change(5, 3)
