"""The caller context: who is asking, in which role, over which data (I6).

The gateway builds it from the identity session and sends it with every RPC in nameko
context data under `CONTEXT_KEY` (a JSON string, so it survives as an AMQP header).
Each service checks it against its own data before answering.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from services.common.errors import Forbidden, Unauthenticated

CONTEXT_KEY = "xueji_caller"

ScopeKind = Literal["self", "classes", "college", "institution", "area", "none"]

# Roles of the roles table in docs/domain.md.
STUDENT = "student"
COUNSELOR = "counselor"
DEPUTY_SECRETARY = "deputy_secretary"
STUDENT_AFFAIRS = "student_affairs"
ACADEMIC_AFFAIRS = "academic_affairs"
IT_CENTRE = "it_centre"
HOUSING_CENTRE = "housing_centre"
AID_OPERATOR = "aid_operator"
AID_AUDITOR = "aid_auditor"
AUTHORITY = "authority"
SYSTEM = "system"

ROLES = (
    STUDENT, COUNSELOR, DEPUTY_SECRETARY, STUDENT_AFFAIRS, ACADEMIC_AFFAIRS, IT_CENTRE,
    HOUSING_CENTRE, AID_OPERATOR, AID_AUDITOR, AUTHORITY,
)

ROLE_LABELS = {
    STUDENT: "学生",
    COUNSELOR: "辅导员",
    DEPUTY_SECRETARY: "党总支副书记",
    STUDENT_AFFAIRS: "学生处",
    ACADEMIC_AFFAIRS: "教务处",
    IT_CENTRE: "信息技术中心",
    HOUSING_CENTRE: "宿管中心",
    AID_OPERATOR: "资助中心经办人",
    AID_AUDITOR: "资助中心审核人",
    AUTHORITY: "学籍主管部门",
    SYSTEM: "系统",
}


@dataclass(frozen=True)
class Scope:
    """The data a grant covers: own record, some classes, a college, everything."""

    kind: ScopeKind
    ids: tuple[str, ...] = ()

    def covers_student(self, student_number: str, college_code: str, class_code: str) -> bool:
        if self.kind == "institution":
            return True
        if self.kind == "college":
            return college_code in self.ids
        if self.kind == "classes":
            return class_code in self.ids
        if self.kind == "self":
            return student_number in self.ids
        # "area" (authorities) is resolved against institution codes by the services
        # that hold them; a single-institution deployment treats it as no access.
        return False


@dataclass(frozen=True)
class Caller:
    user_id: str
    username: str
    role: str
    scope: Scope
    correlation_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    session_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scope"] = {"kind": self.scope.kind, "ids": list(self.scope.ids)}
        return data

    def to_header(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Caller:
        scope = data.get("scope") or {}
        return cls(
            user_id=str(data["user_id"]),
            username=str(data["username"]),
            role=str(data["role"]),
            scope=Scope(kind=scope.get("kind", "none"), ids=tuple(scope.get("ids", ()))),
            correlation_id=str(data.get("correlation_id") or uuid.uuid4().hex),
            session_id=data.get("session_id"),
        )

    def is_system(self) -> bool:
        return self.role == SYSTEM

    def require_role(self, *roles: str) -> None:
        if self.role != SYSTEM and self.role not in roles:
            raise Forbidden(f"角色“{ROLE_LABELS.get(self.role, self.role)}”无权执行此操作")

    def require_student(self, student_number: str, college_code: str, class_code: str) -> None:
        if self.role == SYSTEM:
            return
        if not self.scope.covers_student(student_number, college_code, class_code):
            raise Forbidden(f"学生 {student_number} 不在您的数据权限范围内")


def system_caller(service: str, correlation_id: str | None = None) -> Caller:
    """A service's own jobs, CLI tools and seeding act as this caller."""
    return Caller(
        user_id=f"system:{service}",
        username=f"system:{service}",
        role=SYSTEM,
        scope=Scope(kind="institution"),
        correlation_id=correlation_id or uuid.uuid4().hex,
    )


def require_caller(caller: Caller | None) -> Caller:
    if caller is None:
        raise Unauthenticated("请先登录")
    return caller
