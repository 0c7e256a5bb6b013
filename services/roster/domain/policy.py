"""Field policies (R10) and who may change what how (R5, R11, R12).

- Some fields are never open (number, class, status: they change by their own procedures).
- Key fields (R12: name, gender, birth date, ID document) change only through a request with
  evidence, approved by the student affairs office.
- Other fields: staff in scope edit them directly when the policy says "edit" (R11);
  students request changes of fields the policy opens to them, reviewed by the counselor
  and then approved by the student affairs office (R5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.roster.domain.record import FIELD_BY_KEY

NEVER_OPEN = frozenset({"student_number", "class_code", "major_code"})
KEY_FIELDS = frozenset({"name", "gender", "birth_date", "id_type", "national_id"})
STUDENT_ACCESS = {"hidden": "不可见", "read": "只读", "optional": "选填", "required": "必填"}
STAFF_ACCESS = {"read": "只读", "edit": "可编辑"}
_CONTACT = frozenset({"phone", "email", "postcode", "address", "home_address", "mailing_address"})
_STAFF = frozenset({"counselor", "deputy_secretary", "student_affairs"})


@dataclass(frozen=True)
class Policy:
    field: str
    student: str  # one of STUDENT_ACCESS
    staff: str  # one of STAFF_ACCESS


def default_policy(field: str) -> Policy:
    if field in NEVER_OPEN or field in KEY_FIELDS:
        return Policy(field, "read", "read")
    if field in _CONTACT or field.startswith("guardian"):
        return Policy(field, "optional", "edit")
    return Policy(field, "read", "edit")


def policies(overrides: Mapping[str, Policy]) -> dict[str, Policy]:
    return {key: overrides.get(key) or default_policy(key) for key in FIELD_BY_KEY}


def policy_problem(field: str, student: str, staff: str) -> str | None:
    if field not in FIELD_BY_KEY:
        return f"字段 {field} 不存在"
    if field in NEVER_OPEN:
        return f"{FIELD_BY_KEY[field].header}不开放修改（按学号、班级调整等专门流程办理）"
    if student not in STUDENT_ACCESS or staff not in STAFF_ACCESS:
        return "权限取值无效"
    if field in KEY_FIELDS and staff == "edit":
        return f"{FIELD_BY_KEY[field].header}是关键字段，只能通过变更申请修改（R12）"
    return None


@dataclass
class Plan:
    direct: dict[str, str]  # applied at once (staff, ordinary fields)
    request: dict[str, str]  # need a change request
    kind: str  # "self" (student: counselor, then student affairs) | "key" (student affairs)
    refused: dict[str, str]  # field → why


def plan_changes(role: str, changes: Mapping[str, str], rules: Mapping[str, Policy]) -> Plan:
    plan = Plan({}, {}, "self" if role == "student" else "key", {})
    for field, value in changes.items():
        spec = FIELD_BY_KEY.get(field)
        if spec is None:
            plan.refused[field] = f"字段 {field} 不存在"
            continue
        rule = rules[field]
        if field in NEVER_OPEN:
            plan.refused[field] = f"{spec.header}不开放修改"
        elif role == "student":
            if rule.student not in ("optional", "required"):
                plan.refused[field] = f"{spec.header}不允许学生修改"
            elif rule.student == "required" and not str(value or "").strip():
                plan.refused[field] = f"{spec.header}为必填项，不能清空"
            else:
                plan.request[field] = value
        elif role not in _STAFF:
            plan.refused[field] = "您的角色不能修改学籍信息"
        elif field in KEY_FIELDS:
            plan.request[field] = value
        elif rule.staff == "edit":
            plan.direct[field] = value
        else:
            plan.refused[field] = f"{spec.header}不允许教职工修改"
    return plan


# Request states and who acts on each.
PENDING_COUNSELOR, PENDING_FINAL, APPROVED, REJECTED = "pending_counselor", "pending_final", "approved", "rejected"
STATE_LABELS = {
    PENDING_COUNSELOR: "待辅导员审核", PENDING_FINAL: "待学生处审批", APPROVED: "已通过", REJECTED: "已驳回",
}


def next_state(state: str, approve: bool) -> str:
    if not approve:
        return REJECTED
    return PENDING_FINAL if state == PENDING_COUNSELOR else APPROVED


def reviewer_roles(state: str) -> frozenset[str]:
    if state == PENDING_COUNSELOR:
        return frozenset({"counselor", "deputy_secretary"})
    if state == PENDING_FINAL:
        return frozenset({"student_affairs"})
    return frozenset()
