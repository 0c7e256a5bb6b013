"""The left menu: which pages each role may use (others are absent, not greyed out).

The gateway's check is the first of two (I6): a page outside the role's menu answers 403
here, and the service behind it still checks the caller's scope against its own data.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common import caller as roles

STAFF_WITH_STUDENT_ACCESS = frozenset({
    roles.COUNSELOR, roles.DEPUTY_SECRETARY, roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS,
    roles.IT_CENTRE, roles.HOUSING_CENTRE, roles.AID_OPERATOR, roles.AID_AUDITOR,
    roles.AUTHORITY,
})
EVERYONE = frozenset({*roles.ROLES, roles.SYSTEM})


@dataclass(frozen=True)
class Entry:
    key: str
    label: str
    endpoint: str
    roles: frozenset[str]
    group: str = ""
    description: str = ""


ENTRIES: tuple[Entry, ...] = (
    Entry("home", "首页", "web.home", EVERYONE),
    Entry("students", "学生名单", "web.students", STAFF_WITH_STUDENT_ACCESS, "学籍管理",
          "按学号或姓名查询权限范围内的学生，查看学籍状态、宿舍与账号"),
    Entry("my_record", "我的学籍", "web.my_record", frozenset({roles.STUDENT}), "学籍管理",
          "查看本人的学籍状态、宿舍床位与账号信息"),
    Entry("health", "服务状态", "web.health", frozenset({roles.STUDENT_AFFAIRS, roles.IT_CENTRE}),
          "系统监控", "查看统一身份、学籍、宿舍、资助、转学各服务的运行状态"),
)

BY_KEY = {entry.key: entry for entry in ENTRIES}


def allowed(role: str, key: str) -> bool:
    return role in BY_KEY[key].roles


def entries_for(role: str) -> list[Entry]:
    return [entry for entry in ENTRIES if role in entry.roles]


def groups_for(role: str) -> list[tuple[str, list[Entry]]]:
    """Menu entries of `role`, grouped in menu order (ungrouped entries first)."""
    grouped: dict[str, list[Entry]] = {}
    for entry in entries_for(role):
        grouped.setdefault(entry.group, []).append(entry)
    return list(grouped.items())
