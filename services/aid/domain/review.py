"""The review chain (A3): applied → counselor → college → school operator → school auditor → submitted.

Each step is taken by one role; any reviewer of the current step may return the application
to the student with a reason; a returned application is amended and submitted again and
starts over. Every decision names who took it and when ("who reviews is responsible"),
and nobody reviews the same application at two steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.caller import AID_AUDITOR, AID_OPERATOR, COUNSELOR, DEPUTY_SECRETARY
from services.common.errors import Conflict, Forbidden

APPLIED = "applied"
COUNSELOR_PASSED = "counselor_passed"
COLLEGE_PASSED = "college_passed"
OPERATOR_PASSED = "operator_passed"
AUDITED = "audited"
SUBMITTED = "submitted"
RETURNED = "returned"

STATUS_LABELS = {
    APPLIED: "待辅导员审核",
    COUNSELOR_PASSED: "待学院审核",
    COLLEGE_PASSED: "待学校经办",
    OPERATOR_PASSED: "待学校审核",
    AUDITED: "待报送",
    SUBMITTED: "已报送",
    RETURNED: "已退回",
}


@dataclass(frozen=True)
class Step:
    status: str  # the status an application waits in for this step
    role: str
    label: str
    next_status: str


STEPS: tuple[Step, ...] = (
    Step(APPLIED, COUNSELOR, "辅导员（班级）审核", COUNSELOR_PASSED),
    Step(COUNSELOR_PASSED, DEPUTY_SECRETARY, "学院审核", COLLEGE_PASSED),
    Step(COLLEGE_PASSED, AID_OPERATOR, "学校经办人审核", OPERATOR_PASSED),
    Step(OPERATOR_PASSED, AID_AUDITOR, "学校审核人审核", AUDITED),
)
# AUDITED → SUBMITTED is not a review: the operator's national submission (A4) takes it.
BY_STATUS = {step.status: step for step in STEPS}
# The first approval takes the quota place; a return gives it back.
TAKES_QUOTA = APPLIED
HOLDS_QUOTA = frozenset({COUNSELOR_PASSED, COLLEGE_PASSED, OPERATOR_PASSED, AUDITED, SUBMITTED})
REVIEW_ROLES = frozenset(step.role for step in STEPS)

APPROVE = "approve"
RETURN = "return"


def follows_class_move(status: str) -> bool:
    """调班 (R9): an application still in the review chain (or returned, to be amended and resubmitted)
    belongs to the student's new class: its counselor and college review it from now on, and the old
    ones no longer see it. A finished one (audited, submitted) keeps the class it was granted in, as
    that year's reports and submissions do."""
    return status in BY_STATUS or status == RETURNED


def step_for(status: str) -> Step:
    step = BY_STATUS.get(status)
    if step is None:
        raise Conflict(f"申请当前状态为“{STATUS_LABELS.get(status, status)}”，不在审核环节")
    return step


def steps_of(role: str) -> list[Step]:
    return [step for step in STEPS if step.role == role]


def decide(status: str, role: str, decision: str, reason: str, reviewer: str,
           earlier_reviewers: set[str], system: bool = False) -> str:
    """The status after `reviewer` (in `role`) takes `decision`; raises when they may not."""
    step = step_for(status)
    if not system and role != step.role:
        raise Forbidden(f"当前环节为“{step.label}”，您的角色不能审核")
    if decision not in (APPROVE, RETURN):
        raise Conflict("审核结果只能是通过或退回")
    if not system and reviewer in earlier_reviewers:
        raise Forbidden("同一人不能在两个环节审核同一申请")
    if decision == RETURN:
        if not reason.strip():
            raise Conflict("退回时必须填写原因")
        return RETURNED
    return step.next_status
