"""学籍异动 (R8, R16–R18): the kinds of status change, which status each may start from,
what it leads to and who may apply it. The one table every path (form, batch sheet,
calendar jobs, clearance, transfer) checks against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.common.caller import (
    ACADEMIC_AFFAIRS,
    AUTHORITY,
    COUNSELOR,
    DEPUTY_SECRETARY,
    SYSTEM,
)
from services.roster.domain import status as st

# A student who joined the army may resume within this many years of discharge (R8, 参军).
MILITARY_RETURN_YEARS = 2

NOT_LEFT = frozenset(st.LABELS) - st.LEFT


@dataclass(frozen=True)
class Kind:
    code: str
    label: str
    to_status: str
    from_statuses: frozenset[str]
    roles: frozenset[str]  # who may apply it (and revoke it); scope is checked as well
    evidence_required: bool = True  # an attachment or a document reference (文号)
    # Waits for the authority's approval whoever applies it (besides the authority and the system),
    # whatever the setting `authority_approval_kinds` says.
    authority_approval: bool = False


def _kind(code: str, label: str, to: str, sources: set[str] | frozenset[str], *roles: str,
          evidence: bool = True, approval: bool = False) -> Kind:
    return Kind(code, label, to, frozenset(sources), frozenset({*roles, SYSTEM}), evidence, approval)


AA = ACADEMIC_AFFAIRS
# Irregular graduation is the counselor's (R18); the clearance system's path is the system's.
GRADUATING = (COUNSELOR, DEPUTY_SECRETARY, AA)

KINDS: dict[str, Kind] = {k.code: k for k in (
    _kind("suspend", "休学", st.SUSPENDED, {st.ENROLLED, st.VISITING}, AA),
    _kind("resume", "复学", st.ENROLLED, {st.SUSPENDED, st.MILITARY}, AA),
    _kind("withdraw", "退学", st.WITHDRAWN,
          {st.ENROLLED, st.SUSPENDED, st.VISITING, st.MILITARY, st.NOT_REPORTED, st.SUSPECTED_DROPOUT,
           st.DROPOUT}, AA),
    _kind("expel", "开除", st.EXPELLED, {st.ENROLLED, st.SUSPENDED, st.VISITING, st.SUSPECTED_DROPOUT}, AA),
    _kind("death", "死亡", st.DECEASED, NOT_LEFT, AA),
    _kind("military", "参军", st.MILITARY, {st.ENROLLED, st.SUSPENDED}, AA),
    _kind("transfer_out", "转出", st.TRANSFERRED_OUT, {st.ENROLLED, st.SUSPENDED}, AA),
    _kind("visiting", "借读", st.VISITING, {st.ENROLLED}, AA),
    _kind("end_visiting", "借读结束", st.ENROLLED, {st.VISITING}, AA),
    _kind("graduate", "毕业", st.GRADUATED, {st.ENROLLED}, *GRADUATING),
    _kind("complete", "结业", st.COMPLETED, {st.ENROLLED}, *GRADUATING),
    _kind("attendance", "肄业", st.ATTENDANCE, {st.ENROLLED}, *GRADUATING),
    _kind("not_reported", "未报到", st.NOT_REPORTED, {st.ENROLLED}, AA, evidence=False),
    _kind("report_late", "补报到", st.ENROLLED, {st.NOT_REPORTED}, AA, COUNSELOR),
    _kind("suspected_dropout", "疑似辍学", st.SUSPECTED_DROPOUT, {st.ENROLLED}, AA, COUNSELOR),
    _kind("dropout", "辍学", st.DROPOUT, {st.SUSPECTED_DROPOUT}, AA),
    _kind("return", "返校", st.ENROLLED, {st.SUSPECTED_DROPOUT, st.DROPOUT}, AA, COUNSELOR),
    # T3: leaving the country closes the record here like a withdrawal (R8: leaving to settle abroad is
    # the one withdrawal open to compulsory-education students); destination and date in the details.
    _kind("go_abroad", "出国（境）", st.WITHDRAWN, {st.ENROLLED, st.SUSPENDED}, AA, approval=True),
)}

# Kinds recorded by other paths, never applied through the table: 转入 is the first change of a
# student admitted by a transfer from another institution (services/roster/transfers_in_out.py).
TRANSFER_IN = "transfer_in"
RECORDED_KINDS: dict[str, str] = {TRANSFER_IN: "转入"}

# Roles that approve a change where approval by the authority is configured (K-12, R8).
APPROVERS = frozenset({AUTHORITY})


class TransitionError(Exception):
    """A change that the table, the role or the evidence does not allow; `message` is for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def kind_of(code: str) -> Kind:
    kind = KINDS.get(code)
    if kind is None:
        raise TransitionError(f"异动类型“{code}”不存在")
    return kind


def kind_label(code: str | None) -> str | None:
    """The label of a kind of the table or of a recorded kind (转入), None for unknown codes."""
    if code in KINDS:
        return KINDS[code].label
    return RECORDED_KINDS.get(code or "")


def needs_authority_approval(kind: Kind, configured: list[str] | frozenset[str] | set[str]) -> bool:
    """K-12: configured kinds wait for the authority; some kinds always do (出国（境）, T3)."""
    return kind.authority_approval or kind.code in configured


def kind_by_label(text: str) -> Kind | None:
    """The kind a spreadsheet cell names, by label (休学) or code (suspend)."""
    text = text.strip()
    return KINDS.get(text) or next((k for k in KINDS.values() if k.label == text), None)


def refusal(kind: Kind, current: str) -> str | None:
    """Why `kind` cannot start from status `current`, or None."""
    if current in kind.from_statuses:
        return None
    allowed = "、".join(st.label(s) for s in sorted(kind.from_statuses, key=list(st.LABELS).index))
    return f"学籍状态为“{st.label(current)}”，不能办理{kind.label}（仅限：{allowed}）"


def may_apply(kind: Kind, role: str) -> bool:
    return role in kind.roles


def check(kind: Kind, current: str, role: str, *, reason: str, evidence: str, attachments: int) -> None:
    """Everything about one change that does not need the database; raises TransitionError."""
    if not may_apply(kind, role):
        raise TransitionError(f"您的角色不能办理{kind.label}")
    problem = refusal(kind, current)
    if problem:
        raise TransitionError(problem)
    if not reason.strip():
        raise TransitionError("请填写异动原因")
    if kind.evidence_required and role != SYSTEM and not evidence.strip() and attachments == 0:
        raise TransitionError(f"{kind.label}须有证明材料：上传附件或填写文号")


def military_return_refusal(discharged_on: date | None, today: date) -> str | None:
    """参军: the record is kept until 2 years after discharge; resuming later is refused."""
    if discharged_on is None:
        return "参军学生复学须填写退役日期"
    if discharged_on > today:
        return "退役日期不能晚于今天"
    limit = _add_years(discharged_on, MILITARY_RETURN_YEARS)
    if today > limit:
        return f"退役已超过{MILITARY_RETURN_YEARS}年（保留学籍至 {limit.isoformat()}），不能复学"
    return None


def revoker_refusal(kind: Kind | None, role: str) -> str | None:
    """An applied change is revoked by the same authority: a role that may apply its kind."""
    if kind is None:
        return None if role == SYSTEM else "该异动不是经异动办理产生的，不能在此撤销"
    if not may_apply(kind, role):
        return f"只有能办理{kind.label}的部门才能撤销它"
    return None


def revocation_refusal(is_latest: bool, already_revoked: bool, is_revocation: bool) -> str | None:
    """Only the student's latest change is revoked, so what it replaced is exactly what to restore."""
    if is_revocation:
        return "撤销记录本身不能再撤销；如需恢复请重新办理异动"
    if already_revoked:
        return "该异动已撤销"
    if not is_latest:
        return "只能撤销该学生最近一次异动"
    return None


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)
