"""The transfer workflow's rules (domain/workflow.py): the state machine of both sides, what a peer's
message may do in each state, deadlines (T4) and term windows (T5)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest

from services.transfer.domain import workflow as wf
from services.transfer.domain.workflow import (
    CANCELLED,
    COMPLETED,
    INFLOW,
    INFLOW_AUTHORITY,
    OUTFLOW,
    OUTFLOW_AUTHORITY,
    OUTFLOW_SCHOOL,
    RECORD_PENDING,
    RECORD_SENT,
    REJECTED,
    WorkflowRefusal,
)

# The whole table of our own decisions, written out by hand from T1 and the contract:
# (direction, state, stage, approve) → next state. Every other combination is refused.
EXPECTED = {
    (INFLOW, INFLOW_AUTHORITY, INFLOW_AUTHORITY, True): OUTFLOW_SCHOOL,
    (INFLOW, INFLOW_AUTHORITY, INFLOW_AUTHORITY, False): REJECTED,
    (OUTFLOW, OUTFLOW_SCHOOL, OUTFLOW_SCHOOL, True): OUTFLOW_AUTHORITY,
    (OUTFLOW, OUTFLOW_SCHOOL, OUTFLOW_SCHOOL, False): REJECTED,
    (OUTFLOW, OUTFLOW_AUTHORITY, OUTFLOW_AUTHORITY, True): RECORD_SENT,
    (OUTFLOW, OUTFLOW_AUTHORITY, OUTFLOW_AUTHORITY, False): REJECTED,
}


def test_our_decisions_follow_the_table_and_nothing_else_is_allowed() -> None:
    for direction, state, stage, approve in itertools.product(wf.DIRECTIONS, wf.STATES, wf.STAGES, (True, False)):
        key = (direction, state, stage, approve)
        if key in EXPECTED:
            assert wf.decide(direction, state, stage, approve) == EXPECTED[key], key
        else:
            with pytest.raises(WorkflowRefusal) as refused:
                wf.decide(direction, state, stage, approve)
            assert refused.value.error == "invalid_state", key


def test_a_refused_decision_says_why_in_chinese() -> None:
    with pytest.raises(WorkflowRefusal, match="不由本校审核"):
        wf.decide(INFLOW, OUTFLOW_SCHOOL, OUTFLOW_SCHOOL, True)  # the peer's stage
    with pytest.raises(WorkflowRefusal, match="待转出地主管部门审批"):
        wf.decide(OUTFLOW, OUTFLOW_AUTHORITY, OUTFLOW_SCHOOL, True)  # already past it
    with pytest.raises(WorkflowRefusal, match="未知的审核环节"):
        wf.decide(OUTFLOW, OUTFLOW_SCHOOL, "principal", True)


def test_each_stage_is_decided_by_its_offices() -> None:
    assert wf.STAGE_ROLES == {INFLOW_AUTHORITY: ("authority",), OUTFLOW_SCHOOL: ("student_affairs", "academic_affairs"),
                              OUTFLOW_AUTHORITY: ("authority",)}
    assert wf.OUR_STAGES == {INFLOW: (INFLOW_AUTHORITY,), OUTFLOW: (OUTFLOW_SCHOOL, OUTFLOW_AUTHORITY)}
    assert wf.stage_of(RECORD_PENDING) is None and wf.stage_of(OUTFLOW_AUTHORITY) == OUTFLOW_AUTHORITY


def test_the_inflow_state_follows_the_peer_decisions_in_any_order() -> None:
    approved, rejected = wf.APPROVED, wf.REJECTED_DECISION
    assert wf.inflow_progress({}, False) == OUTFLOW_SCHOOL
    assert wf.inflow_progress({OUTFLOW_SCHOOL: approved}, False) == OUTFLOW_AUTHORITY
    assert wf.inflow_progress({OUTFLOW_AUTHORITY: approved}, False) == OUTFLOW_SCHOOL  # school's still to come
    assert wf.inflow_progress({OUTFLOW_AUTHORITY: approved}, True) == OUTFLOW_SCHOOL  # record early: kept, waits
    both = {OUTFLOW_SCHOOL: approved, OUTFLOW_AUTHORITY: approved}
    assert wf.inflow_progress(both, False) == RECORD_PENDING
    assert wf.inflow_progress(both, True) == COMPLETED
    assert wf.inflow_progress({OUTFLOW_SCHOOL: rejected}, False) == REJECTED
    assert wf.inflow_progress({OUTFLOW_SCHOOL: approved, OUTFLOW_AUTHORITY: rejected}, True) == REJECTED


def test_the_outflow_state_follows_our_decisions() -> None:
    assert wf.outflow_progress({}) == OUTFLOW_SCHOOL
    assert wf.outflow_progress({OUTFLOW_SCHOOL: wf.APPROVED}) == OUTFLOW_AUTHORITY
    assert wf.outflow_progress({OUTFLOW_SCHOOL: wf.APPROVED, OUTFLOW_AUTHORITY: wf.APPROVED}) == RECORD_SENT
    assert wf.outflow_progress({OUTFLOW_SCHOOL: wf.REJECTED_DECISION}) == REJECTED


def refusal(call: object, *args: object) -> str:
    try:
        return call(*args)  # type: ignore[operator, no-any-return]
    except WorkflowRefusal as exc:
        assert exc.error == "invalid_state"
        return "refused"


def test_what_a_peer_decision_does_in_each_state() -> None:
    inflow = (OUTFLOW_SCHOOL, OUTFLOW_AUTHORITY, RECORD_PENDING, COMPLETED, REJECTED, CANCELLED)
    table = {state: refusal(wf.peer_decision_effect, INFLOW, state, True, None, "approved") for state in inflow}
    assert table == {OUTFLOW_SCHOOL: "store", OUTFLOW_AUTHORITY: "store", RECORD_PENDING: "store",
                     COMPLETED: "refused", REJECTED: "store", CANCELLED: "store"}
    # before our request went out the peer cannot know the transfer, whatever became of it here
    for state in (INFLOW_AUTHORITY, REJECTED, CANCELLED):
        assert refusal(wf.peer_decision_effect, INFLOW, state, False, None, "approved") == "refused"
    assert wf.peer_decision_effect(INFLOW, COMPLETED, True, "approved", "approved") == "same"
    assert refusal(wf.peer_decision_effect, INFLOW, OUTFLOW_AUTHORITY, True, "approved", "rejected") == "refused"
    assert refusal(wf.peer_decision_effect, OUTFLOW, OUTFLOW_SCHOOL, True, None, "approved") == "refused"


def test_what_a_peer_record_does_in_each_state() -> None:
    inflow = (OUTFLOW_SCHOOL, OUTFLOW_AUTHORITY, RECORD_PENDING, REJECTED, CANCELLED)
    table = {state: refusal(wf.peer_record_effect, INFLOW, state, True, None, "a" * 64, False) for state in inflow}
    assert table == {OUTFLOW_SCHOOL: "store", OUTFLOW_AUTHORITY: "store", RECORD_PENDING: "store",
                     REJECTED: "refused", CANCELLED: "refused"}
    assert refusal(wf.peer_record_effect, INFLOW, INFLOW_AUTHORITY, False, None, "a" * 64, False) == "refused"
    # a record overtaking our unanswered cancel wins: the peer sent it before it saw the cancel
    assert wf.peer_record_effect(INFLOW, CANCELLED, True, None, "a" * 64, True) == "store"
    assert refusal(wf.peer_record_effect, INFLOW, CANCELLED, False, None, "a" * 64, True) == "refused"
    assert wf.peer_record_effect(INFLOW, COMPLETED, True, "a" * 64, "a" * 64, False) == "same"
    assert refusal(wf.peer_record_effect, INFLOW, COMPLETED, True, "a" * 64, "b" * 64, False) == "refused"
    assert refusal(wf.peer_record_effect, OUTFLOW, RECORD_SENT, True, None, "a" * 64, False) == "refused"


def test_what_a_peer_cancel_does_in_each_state() -> None:
    inflow = {state: refusal(wf.peer_cancel_effect, INFLOW, state) for state in wf.STATES}
    assert inflow == {INFLOW_AUTHORITY: "refused", OUTFLOW_SCHOOL: "cancel", OUTFLOW_AUTHORITY: "cancel",
                      RECORD_PENDING: "cancel", RECORD_SENT: "refused", COMPLETED: "refused", REJECTED: "same",
                      CANCELLED: "same"}
    outflow = {state: refusal(wf.peer_cancel_effect, OUTFLOW, state) for state in wf.STATES}
    assert outflow[OUTFLOW_SCHOOL] == outflow[OUTFLOW_AUTHORITY] == "cancel"
    assert outflow[RECORD_SENT] == outflow[COMPLETED] == "refused"


def test_either_side_cancels_only_before_the_record_was_sent() -> None:
    allowed = {(d, s) for d, s in itertools.product(wf.DIRECTIONS, wf.STATES) if wf.cancel_refusal(d, s) is None}
    assert allowed == {(INFLOW, INFLOW_AUTHORITY), (INFLOW, OUTFLOW_SCHOOL), (INFLOW, OUTFLOW_AUTHORITY),
                       (INFLOW, RECORD_PENDING), (OUTFLOW, OUTFLOW_SCHOOL), (OUTFLOW, OUTFLOW_AUTHORITY)}
    assert wf.cancel_refusal(OUTFLOW, RECORD_SENT) == "学籍档案已发送，不能撤销"
    assert wf.cancel_refusal(INFLOW, REJECTED) == "转学状态为“未通过”，不能撤销"
    # the outflow side has not heard of an inflow transfer its authority has not approved yet
    assert not wf.peer_knows(INFLOW, INFLOW_AUTHORITY) and wf.peer_knows(INFLOW, OUTFLOW_SCHOOL)
    assert wf.peer_knows(OUTFLOW, OUTFLOW_SCHOOL)


def test_deadline_days_per_authority_with_a_general_default() -> None:
    assert wf.deadline_days(20, {"420100": 10}, "420100") == 10
    assert wf.deadline_days(15, {"420100": 10}, "110000") == 15
    assert wf.deadline_days(None, None, None) == 20
    assert wf.deadline_days("x", {}, "420100") == 20 and wf.deadline_days(0, {}, None) == 20


def test_a_stage_of_ours_is_approved_by_default_the_day_after_its_deadline() -> None:
    deadline = date(2026, 10, 20)
    assert not wf.default_approval_due(OUTFLOW, OUTFLOW_SCHOOL, deadline, date(2026, 10, 20))
    assert wf.default_approval_due(OUTFLOW, OUTFLOW_SCHOOL, deadline, date(2026, 10, 21))
    assert wf.default_approval_due(INFLOW, INFLOW_AUTHORITY, deadline, date(2026, 10, 21))
    assert not wf.default_approval_due(INFLOW, OUTFLOW_SCHOOL, deadline, date(2026, 10, 21))  # the peer's
    assert not wf.default_approval_due(OUTFLOW, RECORD_SENT, deadline, date(2026, 10, 21))
    assert not wf.default_approval_due(OUTFLOW, OUTFLOW_SCHOOL, None, date(2026, 10, 21))


def test_out_of_term_outside_every_window_only() -> None:
    windows = wf.term_windows([{"start": "2026-09-01", "end": "2026-09-30"},
                               {"start": "2027-01-01", "end": "2027-01-31"}, {"start": "bad"}, "x"])
    assert len(windows) == 2
    assert not wf.out_of_term(date(2026, 9, 1), windows) and not wf.out_of_term(date(2027, 1, 31), windows)
    assert wf.out_of_term(date(2026, 10, 1), windows)
    assert not wf.out_of_term(date(2026, 10, 1), [])  # nothing configured: no window to be outside of
    assert wf.term_windows('[{"start": "2026-09-01", "end": "2026-09-30"}]') == windows[:1]
    assert wf.term_windows("not json") == []


def test_campus_days_and_identities() -> None:
    assert wf.campus_day(datetime(2026, 9, 30, 17, 0, tzinfo=UTC)) == date(2026, 10, 1)  # 01:00 in Beijing
    assert wf.authority_of_institution("4142010001") == "420100"
    assert wf.national_student_id("", "11010120050101001x") == "G11010120050101001X"
    assert wf.national_student_id("g123", "1") == "G123"


def test_who_may_decide_or_cancel_and_the_queues_of_each_role() -> None:
    assert wf.may_decide("authority", "inflow", "inflow_authority")
    assert not wf.may_decide("student_affairs", "inflow", "inflow_authority")
    assert wf.may_decide("academic_affairs", "outflow", "outflow_school")
    assert not wf.may_decide("academic_affairs", "inflow", "outflow_school")  # the peer's stage
    assert not wf.may_decide("authority", "inflow", "record_pending")  # nobody decides now
    assert wf.may_cancel("student_affairs", "inflow", "record_pending")
    assert not wf.may_cancel("student_affairs", "outflow", "record_sent")
    assert not wf.may_cancel("authority", "inflow", "inflow_authority")
    assert wf.stages_decided_by("authority") == [("inflow", "inflow_authority"), ("outflow", "outflow_authority")]
    assert wf.stages_decided_by("student_affairs") == [("outflow", "outflow_school")]
    assert wf.stages_decided_by("counselor") == []
