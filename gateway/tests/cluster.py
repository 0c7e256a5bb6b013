"""Small real nameko services standing in for identity, roster and housing.

They answer the RPC surface of docs/architecture.md with the same signatures, keep their
data in memory, check the caller context like the real services (require_caller, scope
checks raising Forbidden) and record every caller context they receive, so the gateway
tests can check what travelled over RabbitMQ.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from nameko.rpc import rpc

from services.common.caller import (
    COUNSELOR,
    IT_CENTRE,
    ROLE_LABELS,
    STUDENT,
    STUDENT_AFFAIRS,
    Caller,
    Scope,
    require_caller,
)
from services.common.errors import Forbidden, Invalid, NotFound, Unauthenticated
from services.common.nameko_deps import CallerProvider

PASSWORD = "Xueji@2024"

COLLEGES = {"01": "计算机学院", "02": "外国语学院"}
CLASSES = {"2023010101": "计算机2301班", "2023010102": "计算机2302班", "2023020101": "英语2301班"}
STATUS_LABELS = {"enrolled": "在读", "suspended": "休学", "graduated": "毕业"}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超"]


def _students() -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}

    def add(number: str, name: str, class_code: str, status: str) -> None:
        rows[number] = {"student_number": number, "name": name, "gender": "1",
                        "national_id": "110101200501011234", "college_code": class_code[4:6],
                        "class_code": class_code, "status": status}

    add("202301010101", "张三", "2023010101", "enrolled")
    add("202301010102", "李四", "2023010101", "suspended")
    # 23 more in the counselor's class, so its list spans pages.
    for seat, (surname, given) in zip(range(3, 26), itertools.product(SURNAMES, GIVEN),
                                      strict=False):
        add(f"2023010101{seat:02d}", surname + given, "2023010101", "enrolled")
    add("202301010201", "王五", "2023010102", "enrolled")
    add("202302010101", "赵六", "2023020101", "graduated")
    add("202301010299", "钱七", "2023010102", "enrolled")  # its record is broken (see roster)
    return rows


STUDENTS = _students()
BROKEN_RECORD = "202301010299"

ACCOUNTS: dict[str, dict[str, Any]] = {
    "2001001": {"display_name": "陈老师", "role": COUNSELOR,
                "scope": Scope("classes", ("2023010101",))},
    "2001002": {"display_name": "学生处刘老师", "role": STUDENT_AFFAIRS,
                "scope": Scope("institution")},
    "2001004": {"display_name": "信息中心周老师", "role": IT_CENTRE,
                "scope": Scope("institution")},
    "2001009": {"display_name": "已锁定", "role": COUNSELOR, "scope": Scope("classes", ()),
                "locked": True},
    "202301010101": {"display_name": "张三", "role": STUDENT,
                     "scope": Scope("self", ("202301010101",)), "must_change_password": True},
    "202301010102": {"display_name": "李四", "role": STUDENT,
                     "scope": Scope("self", ("202301010102",))},
}

BEDS = {
    # Shaped like housing's bed view.
    "202301010101": {"label": "东区3号楼-101-2", "building_code": "E03",
                     "building_name": "东区3号楼", "room_no": "101", "bed_no": "2",
                     "since": "2023-09-01T10:00:00+08:00"},
}

# session_id -> username; cleared between tests.
SESSIONS: dict[str, str] = {}
# (service, method, caller dict or None) of every call received.
SEEN: list[tuple[str, str, dict[str, Any] | None]] = []


def reset() -> None:
    SESSIONS.clear()
    SEEN.clear()


def _note(service: str, method: str, caller: Caller | None) -> None:
    SEEN.append((service, method, caller.to_dict() if caller else None))


def _caller_of(username: str, session_id: str) -> dict[str, Any]:
    account = ACCOUNTS[username]
    return Caller(user_id=f"u-{username}", username=username, role=account["role"],
                  scope=account["scope"], session_id=session_id).to_dict()


def _student(number: str) -> dict[str, Any]:
    try:
        return STUDENTS[number]
    except KeyError:
        raise NotFound(f"未找到学号为 {number} 的学生") from None


def _check_scope(caller: Caller, row: dict[str, Any]) -> None:
    caller.require_student(row["student_number"], row["college_code"], row["class_code"])


def _view(row: dict[str, Any], caller: Caller) -> dict[str, Any]:
    full_id = caller.role in (STUDENT_AFFAIRS,) or caller.username == row["student_number"]
    national_id = row["national_id"] if full_id else row["national_id"][:6] + "********" + \
        row["national_id"][-4:]
    return {**row, "national_id": national_id,
            "college_name": COLLEGES.get(row["college_code"], ""),
            "class_name": CLASSES.get(row["class_code"], ""),
            "status_label": STATUS_LABELS.get(row["status"], row["status"]),
            "gender_label": "男", "left": row["status"] == "graduated",
            "on_campus": row["status"] == "enrolled"}


def _health(name: str) -> dict[str, Any]:
    return {"service": name, "status": "ok", "db": "ok", "outbox_backlog": 0}


class IdentityStandIn:
    name = "identity"
    caller = CallerProvider()

    @rpc
    def health(self) -> dict[str, Any]:
        return _health(self.name)

    @rpc
    def login(self, username: str, password: str, remote_addr: str) -> dict[str, Any]:
        _note(self.name, "login", self.caller)
        account = ACCOUNTS.get(username)
        if account and account.get("locked"):
            raise Unauthenticated("账号已锁定，请 15 分钟后再试")
        if account is None or password != PASSWORD:
            raise Unauthenticated("用户名或密码错误")
        session_id = uuid.uuid4().hex
        SESSIONS[session_id] = username
        return {"session_id": session_id, "caller": _caller_of(username, session_id),
                "must_change_password": bool(account.get("must_change_password"))}

    @rpc
    def resolve_session(self, session_id: str) -> dict[str, Any]:
        _note(self.name, "resolve_session", self.caller)
        username = SESSIONS.get(session_id)
        if username is None:
            raise Unauthenticated("会话已失效，请重新登录")
        return _caller_of(username, session_id)

    @rpc
    def logout(self, session_id: str) -> None:
        _note(self.name, "logout", self.caller)
        SESSIONS.pop(session_id, None)

    @rpc
    def get_account(self, username: str) -> dict[str, Any]:
        caller = require_caller(self.caller)
        _note(self.name, "get_account", caller)
        account = ACCOUNTS.get(username)
        if account is None:
            raise NotFound(f"账号 {username} 不存在")
        if caller.username != username and caller.role != STUDENT_AFFAIRS:
            row = STUDENTS.get(username)
            if row is None or caller.role == STUDENT:
                raise Forbidden("无权查看该账号")
            _check_scope(caller, row)
        return {"username": username, "display_name": account["display_name"],
                "role": account["role"], "role_label": ROLE_LABELS[account["role"]],
                "active": not account.get("locked"),
                "must_change_password": bool(account.get("must_change_password"))}


class RosterStandIn:
    name = "roster"
    caller = CallerProvider()

    @rpc
    def health(self) -> dict[str, Any]:
        return {**_health(self.name), "students": len(STUDENTS)}

    @rpc
    def get_student(self, student_number: str) -> dict[str, Any]:
        caller = require_caller(self.caller)
        _note(self.name, "get_student", caller)
        row = _student(student_number)
        _check_scope(caller, row)
        if student_number == BROKEN_RECORD:
            raise RuntimeError("record 202301010299 has no college")  # an unexpected bug
        return _view(row, caller)

    # The student page's extras (R3 former numbers, R15 photo): none here, and not noted in SEEN.
    @rpc
    def student_extras(self, student_number: str) -> dict[str, Any]:
        return {"student_number": student_number, "former_numbers": [], "photo": None}

    @rpc
    def search_students(self, q: str, page: int, per_page: int) -> dict[str, Any]:
        caller = require_caller(self.caller)
        _note(self.name, "search_students", caller)
        if page < 1 or not 1 <= per_page <= 100:
            raise Invalid("分页参数有误")
        if "%" in q or "_" in q:
            raise Invalid("查询条件不能包含通配符")
        if caller.role == STUDENT:
            raise Forbidden("学生不能查询学生名单")
        rows = [r for n, r in sorted(STUDENTS.items())
                if caller.scope.covers_student(n, r["college_code"], r["class_code"])
                and (not q or q in n or q in r["name"])]
        start = (page - 1) * per_page
        return {"items": [_view(r, caller) for r in rows[start:start + per_page]],
                "total": len(rows), "page": page, "per_page": per_page}


class HousingStandIn:
    name = "housing"
    caller = CallerProvider()

    @rpc
    def health(self) -> dict[str, Any]:
        return _health(self.name)

    @rpc
    def occupancy(self, student_number: str) -> dict[str, Any]:
        caller = require_caller(self.caller)
        _note(self.name, "occupancy", caller)
        row = _student(student_number)
        _check_scope(caller, row)
        return {"student_number": student_number, "bed": BEDS.get(student_number)}


class AidStandIn:
    """Only for the outage tests: an `aid` whose container is stopped keeps its queue."""

    name = "aid"

    @rpc
    def health(self) -> dict[str, Any]:
        return _health(self.name)
