"""The transfer workflow between institutions (T1, T2, T4, T5): states, stages, who decides, and what a
peer's message may do to a transfer. Plain code: the use cases in `transfers.py` load and store.

One transfer is seen from two sides. The inflow side (the school the student joins) files it, its
authority approves, then the outflow side's school and authority decide and it sends the record:

    inflow:  inflow_authority → outflow_school → outflow_authority → record_pending → completed
    outflow: outflow_school → outflow_authority → record_sent → completed

Any rejection ends it (`rejected`); either side may cancel before the record was sent (`cancelled`).
On the inflow side the later states follow from the peer's decisions and record, whatever order they
arrive in (`inflow_progress`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.common.caller import ACADEMIC_AFFAIRS, AUTHORITY, STUDENT_AFFAIRS

# Deadlines and filing dates are calendar days on campus.
CAMPUS_TZ = ZoneInfo("Asia/Shanghai")

INFLOW, OUTFLOW = "inflow", "outflow"
DIRECTIONS = (INFLOW, OUTFLOW)

INFLOW_SCHOOL = "inflow_school"
INFLOW_AUTHORITY = "inflow_authority"
OUTFLOW_SCHOOL = "outflow_school"
OUTFLOW_AUTHORITY = "outflow_authority"
STAGES = (INFLOW_SCHOOL, INFLOW_AUTHORITY, OUTFLOW_SCHOOL, OUTFLOW_AUTHORITY)
PEER_STAGES = (OUTFLOW_SCHOOL, OUTFLOW_AUTHORITY)  # the stages the outflow side reports in decisions

# States. The waiting states carry the name of the stage they wait for.
RECORD_PENDING = "record_pending"
RECORD_SENT = "record_sent"
COMPLETED = "completed"
REJECTED = "rejected"
CANCELLED = "cancelled"
ENDED = (COMPLETED, REJECTED, CANCELLED)
STATES = (INFLOW_AUTHORITY, OUTFLOW_SCHOOL, OUTFLOW_AUTHORITY, RECORD_PENDING, RECORD_SENT, *ENDED)

APPROVED, REJECTED_DECISION = "approved", "rejected"

INTRA_PROVINCE, INTER_PROVINCE = "intra_province", "inter_province"
TRANSFER_KINDS = (INTRA_PROVINCE, INTER_PROVINCE)

DIRECTION_LABELS = {INFLOW: "转入", OUTFLOW: "转出"}
STAGE_LABELS = {
    INFLOW_SCHOOL: "转入学校",
    INFLOW_AUTHORITY: "转入地主管部门",
    OUTFLOW_SCHOOL: "转出学校",
    OUTFLOW_AUTHORITY: "转出地主管部门",
}
STATE_LABELS = {
    INFLOW_AUTHORITY: "待转入地主管部门审批",
    OUTFLOW_SCHOOL: "待转出学校审核",
    OUTFLOW_AUTHORITY: "待转出地主管部门审批",
    RECORD_PENDING: "待接收学籍档案",
    RECORD_SENT: "档案已发送，待对方确认",
    COMPLETED: "已完成",
    REJECTED: "未通过",
    CANCELLED: "已撤销",
}
DECISION_LABELS = {APPROVED: "同意", REJECTED_DECISION: "不同意"}
KIND_LABELS = {INTRA_PROVINCE: "省内转学", INTER_PROVINCE: "跨省转学"}
GENDER_LABELS = {"1": "男", "2": "女"}  # GB/T 2261.1, as the interchange carries `gender`
MESSAGE_KIND_LABELS = {
    "transfer.request": "转学申请",
    "transfer.decision": "审核结果",
    "transfer.record": "学籍档案",
    "transfer.ack": "回执",
    "transfer.cancel": "撤销",
}
MESSAGE_STATE_LABELS = {
    "pending": "待发送",
    "sent": "已发送，待回执",
    "acked": "对方已确认",
    "rejected": "被拒收",
    "cancelled": "已取消发送",
    "accepted": "已接收",
    "applied": "已处理",
    "duplicate": "重复消息",
    "ignored": "已忽略",
}
# Why a message was refused (the contract's ack errors, protocol.ERRORS): the one copy of these labels.
MESSAGE_ERROR_LABELS = {
    "bad_signature": "签名无效或密钥未知",
    "wrong_recipient": "收件单位不是本单位",
    "bad_schema": "消息格式不符合协议",
    "unknown_transfer": "没有这条转学记录",
    "invalid_state": "转学当前状态不允许该操作",
}

# Whose decision each stage is, on the side that decides it. The inflow school's part is the filing.
STAGE_ROLES: dict[str, tuple[str, ...]] = {
    INFLOW_AUTHORITY: (AUTHORITY,),
    OUTFLOW_SCHOOL: (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS),
    OUTFLOW_AUTHORITY: (AUTHORITY,),
}
FILING_ROLES = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS)
CANCEL_ROLES = (STUDENT_AFFAIRS, ACADEMIC_AFFAIRS)
# The stages this institution decides (with deadlines, T4), by direction.
OUR_STAGES: dict[str, tuple[str, ...]] = {INFLOW: (INFLOW_AUTHORITY,), OUTFLOW: (OUTFLOW_SCHOOL, OUTFLOW_AUTHORITY)}

# Our own decisions: (direction, state, approve) → next state.
DECISIONS: dict[tuple[str, str, bool], str] = {
    (INFLOW, INFLOW_AUTHORITY, True): OUTFLOW_SCHOOL,  # the request goes out
    (INFLOW, INFLOW_AUTHORITY, False): REJECTED,  # the outflow side never heard of it
    (OUTFLOW, OUTFLOW_SCHOOL, True): OUTFLOW_AUTHORITY,
    (OUTFLOW, OUTFLOW_SCHOOL, False): REJECTED,
    (OUTFLOW, OUTFLOW_AUTHORITY, True): RECORD_SENT,  # the record goes out; the student is transferred out
    (OUTFLOW, OUTFLOW_AUTHORITY, False): REJECTED,
}

# States from which a side may still cancel: before the record was sent (contract).
CANCELLABLE: dict[str, tuple[str, ...]] = {
    INFLOW: (INFLOW_AUTHORITY, OUTFLOW_SCHOOL, OUTFLOW_AUTHORITY, RECORD_PENDING),
    OUTFLOW: (OUTFLOW_SCHOOL, OUTFLOW_AUTHORITY),
}

# Working days each party has for its stage unless its authority set another number (T4).
DEFAULT_DEADLINE_DAYS = 20


class WorkflowRefusal(Exception):
    """A step the transfer's state does not allow; `error` is the interchange ack error it maps to."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error, self.message = error, message


INVALID_STATE = "invalid_state"  # same value as protocol.INVALID_STATE


def stage_of(state: str) -> str | None:
    """The stage a state waits for (None: nobody decides now)."""
    return state if state in (INFLOW_AUTHORITY, OUTFLOW_SCHOOL, OUTFLOW_AUTHORITY) else None


def is_ours(direction: str, stage: str | None) -> bool:
    return stage is not None and stage in OUR_STAGES[direction]


def decide(direction: str, state: str, stage: str, approve: bool) -> str:
    """The state after our decision on `stage`; refuses a stage that is not ours or not current."""
    if stage not in STAGE_LABELS:
        raise WorkflowRefusal(INVALID_STATE, f"未知的审核环节 {stage}")
    if not is_ours(direction, stage):
        raise WorkflowRefusal(INVALID_STATE, f"“{STAGE_LABELS[stage]}”环节不由本校审核")
    if stage_of(state) != stage:
        raise WorkflowRefusal(INVALID_STATE, f"转学当前为“{STATE_LABELS.get(state, state)}”，"
                                             f"不能审核“{STAGE_LABELS[stage]}”环节")
    return DECISIONS[(direction, state, approve)]


def cancel_refusal(direction: str, state: str) -> str | None:
    if state in CANCELLABLE[direction]:
        return None
    if state in (RECORD_SENT, COMPLETED):
        return "学籍档案已发送，不能撤销"
    return f"转学状态为“{STATE_LABELS.get(state, state)}”，不能撤销"


def may_decide(role: str, direction: str, state: str) -> bool:
    """Whether `role` decides the stage the transfer waits for on this side now."""
    stage = stage_of(state)
    return is_ours(direction, stage) and role in STAGE_ROLES[stage or ""]


def may_cancel(role: str, direction: str, state: str) -> bool:
    return role in CANCEL_ROLES and state in CANCELLABLE[direction]


def stages_decided_by(role: str) -> list[tuple[str, str]]:
    """(direction, stage) of every stage of ours that `role` decides: the role's approval queues."""
    return [(direction, stage) for direction, stages in OUR_STAGES.items() for stage in stages
            if role in STAGE_ROLES[stage]]


def peer_knows(direction: str, state: str) -> bool:
    """Whether the peer has heard of the transfer (an inflow transfer is unknown to it until the request)."""
    return direction == OUTFLOW or state != INFLOW_AUTHORITY


def inflow_progress(decisions: Mapping[str, str], has_record: bool) -> str:
    """The inflow side's state once its request went out, from the peer's decisions kept so far and
    whether the record came — in any order (a record or a later stage may overtake an earlier one).

    COMPLETED here means "everything is there": the caller admits the student, then stores it.
    """
    if REJECTED_DECISION in decisions.values():
        return REJECTED
    school, authority = decisions.get(OUTFLOW_SCHOOL), decisions.get(OUTFLOW_AUTHORITY)
    if school == APPROVED and authority == APPROVED:
        return COMPLETED if has_record else RECORD_PENDING
    if school == APPROVED:
        return OUTFLOW_AUTHORITY
    return OUTFLOW_SCHOOL


def outflow_progress(decisions: Mapping[str, str]) -> str:
    """The outflow side's state from its own decisions (used to restore a transfer whose cancel the
    peer refused)."""
    if REJECTED_DECISION in decisions.values():
        return REJECTED
    if decisions.get(OUTFLOW_AUTHORITY) == APPROVED:
        return RECORD_SENT
    if decisions.get(OUTFLOW_SCHOOL) == APPROVED:
        return OUTFLOW_AUTHORITY
    return OUTFLOW_SCHOOL


def peer_decision_effect(direction: str, state: str, requested: bool, kept: str | None, decision: str) -> str:
    """What a peer's decision on a stage does: "store" (keep it and recompute the state), "same" (the
    same decision again: nothing) or a refusal. `requested`: our request went out (the peer knows the
    transfer); `kept`: the decision already kept for that stage."""
    if direction != INFLOW:
        raise WorkflowRefusal(INVALID_STATE, "转出方不接收审核结果")
    if not requested:
        raise WorkflowRefusal(INVALID_STATE, "转学申请尚未发出")
    if kept is not None:
        if kept == decision:
            return "same"
        raise WorkflowRefusal(INVALID_STATE, "该环节已有不同的审核结果")
    if state == COMPLETED:
        raise WorkflowRefusal(INVALID_STATE, "转学已完成")
    # rejected or cancelled: kept for the history (and a cancel the peer refuses restores from it)
    return "store"


def peer_record_effect(direction: str, state: str, requested: bool, kept_sha: str | None, sha: str,
                       cancel_unanswered: bool) -> str:
    """What the peer's record does: "store", "same" or a refusal. A record overtaking our cancel
    (`cancel_unanswered`: the peer has not answered it) wins: the peer sent it before it saw the cancel
    and will refuse the cancel, having already transferred the student out."""
    if direction != INFLOW:
        raise WorkflowRefusal(INVALID_STATE, "转出方不接收学籍档案")
    if kept_sha is not None:
        if kept_sha == sha:
            return "same"
        raise WorkflowRefusal(INVALID_STATE, "已收到内容不同的学籍档案")
    if not requested:
        raise WorkflowRefusal(INVALID_STATE, "转学申请尚未发出")
    if state == REJECTED:
        raise WorkflowRefusal(INVALID_STATE, "转学未通过，不接收学籍档案")
    if state == CANCELLED and not cancel_unanswered:
        raise WorkflowRefusal(INVALID_STATE, "转学已撤销，不接收学籍档案")
    return "store"


def peer_cancel_effect(direction: str, state: str) -> str:
    """What the peer's cancel does: "cancel", "same" (already ended without a record) or a refusal."""
    if state in (REJECTED, CANCELLED):
        return "same"
    if state in (RECORD_SENT, COMPLETED):
        raise WorkflowRefusal(INVALID_STATE, "学籍档案已发送，不能撤销")
    if direction == INFLOW and state == INFLOW_AUTHORITY:
        raise WorkflowRefusal(INVALID_STATE, "转学申请尚未发出")
    return "cancel"


# ---- deadlines (T4) and term windows (T5) ------------------------------------------------------


def campus_day(moment: datetime) -> date:
    return moment.astimezone(CAMPUS_TZ).date()


def deadline_days(setting: Any, by_authority: Any, authority: str | None) -> int:
    """Working days for a stage: the authority's own figure if configured, else the general one (20)."""
    if isinstance(by_authority, Mapping) and authority and authority in by_authority:
        days = by_authority[authority]
    else:
        days = setting
    try:
        value = int(days)
    except (TypeError, ValueError):
        return DEFAULT_DEADLINE_DAYS
    return value if value > 0 else DEFAULT_DEADLINE_DAYS


def default_approval_due(direction: str, state: str, deadline: date | None, as_of: date) -> bool:
    """A stage of ours is approved by default once its last day has passed (T4)."""
    return is_ours(direction, stage_of(state)) and deadline is not None and deadline < as_of


@dataclass(frozen=True)
class TermWindow:
    start: date
    end: date


def term_windows(value: Any) -> list[TermWindow]:
    """The configured windows ([{start, end}] ISO dates); unreadable entries are skipped."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    windows = []
    for item in value if isinstance(value, list) else []:
        try:
            windows.append(TermWindow(date.fromisoformat(item["start"]), date.fromisoformat(item["end"])))
        except (TypeError, KeyError, ValueError):
            continue
    return windows


def out_of_term(day: date, windows: Iterable[TermWindow]) -> bool:
    """T5: outside every configured window (no windows configured: never)."""
    windows = list(windows)
    return bool(windows) and not any(w.start <= day <= w.end for w in windows)


# ---- identities -------------------------------------------------------------------------------


def authority_of_institution(code: str) -> str:
    """The supervising authority's area code read from a 学校标识码 (digits 3–6 are province and city):
    4142010001 → 420100. Used when no authority code is configured."""
    return f"{code[2:6]}00" if len(code) == 10 and code.isdigit() else code


def national_student_id(given: str | None, id_number: str) -> str:
    """The 全国学籍号 given, else roster's convention for students without one: "G" + the ID number."""
    given = (given or "").strip().upper()
    return given or f"G{id_number.strip().upper()}"
