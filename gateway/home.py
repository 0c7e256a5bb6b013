"""The home page's action items (issue 9): which counts each role sees, and where each leads.

`ITEMS` is the one table: an item names the service answering its count (each service's
`home_counts()` RPC, scope-checked there), the key in that answer, the roles it is shown to,
the page it leads to and how urgent a non-zero count is. `gather` calls each needed service
once, all at the same time, each bounded by a timeout; a service that does not answer leaves
its items without a count and adds a notice, the other items still show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, url_for

from gateway import menu
from gateway.rpc import RpcPool, ServiceUnavailable, service_label
from services.common import caller as roles
from services.common.caller import Caller
from services.common.errors import Unauthenticated

log = logging.getLogger(__name__)

URGENT = "urgent"  # a non-zero count is shown in red: something is late or broken
NORMAL = "normal"
DEFAULT_TIMEOUT = 5.0  # seconds; the home page must not wait a whole RPC timeout for one service

OFFICES = frozenset({roles.STUDENT_AFFAIRS, roles.ACADEMIC_AFFAIRS})
TRANSFER_DECIDERS = menu.TRANSFER_DECIDERS


@dataclass(frozen=True)
class Item:
    key: str  # the key in `service.home_counts()`'s answer
    service: str
    label: str
    roles: frozenset[str]
    menu_key: str | None  # the menu entry (page) it leads to; None: no page of its own yet
    urgency: str = NORMAL
    hint: str = ""


ITEMS: tuple[Item, ...] = (
    Item("change_requests", "roster", "待审核的信息变更申请",
         frozenset({roles.COUNSELOR, roles.DEPUTY_SECRETARY, roles.STUDENT_AFFAIRS}), "roster_requests",
         hint="学生本人或教职工提交、等待您这一级审核的变更"),
    Item("review_queue", "aid", "待审核的资助申请",
         frozenset({roles.COUNSELOR, roles.DEPUTY_SECRETARY, roles.AID_OPERATOR, roles.AID_AUDITOR}), "aid_reviews",
         hint="处于您负责的审核环节的申请"),
    Item("suspected_dropouts", "roster", "疑似辍学学生",
         frozenset({roles.COUNSELOR, roles.DEPUTY_SECRETARY}), "status_dropouts", URGENT,
         hint="连续缺勤且联系不上，请尽快核实"),
    Item("problem_records", "roster", "待处理的问题学籍", OFFICES, "roster_problems", URGENT,
         hint="疑似重复的学籍，核实后合并或忽略"),
    Item("clearance_problems", "roster", "离校事件处理问题", OFFICES, "roster_problems", URGENT,
         hint="未匹配、无效或冲突的离校系统事件"),
    Item("status_applications", "roster", "待主管部门审批的学籍异动",
         frozenset({roles.AUTHORITY, *OFFICES}), "status_approvals"),
    Item("pending_graduations", "roster", "待毕业学生", OFFICES, "status_pending"),
    Item("transfer_approvals", "transfer", "待审批的转学", TRANSFER_DECIDERS, "transfer_approvals"),
    Item("transfer_due_soon", "transfer", "剩余不超过 3 个工作日的转学审批", TRANSFER_DECIDERS,
         "transfer_approvals", URGENT, hint="逾期将默认同意"),
    Item("holders_who_left", "housing", "离校未退宿学生",
         frozenset({roles.HOUSING_CENTRE}), "housing_checkout", URGENT, hint="已离校但仍占用床位"),
    Item("restore_problems", "housing", "撤销异动后未能恢复床位的学生",
         frozenset({roles.HOUSING_CENTRE}), "housing_checkout", URGENT, hint="原床位已被占用，请另行安排"),
    Item("own_change_requests", "roster", "审核中的信息变更申请", frozenset({roles.STUDENT}), "roster_my_record"),
    Item("own_applications", "aid", "审核中的资助申请", frozenset({roles.STUDENT}), "aid_apply"),
)


def items_for(role: str) -> list[Item]:
    return [item for item in ITEMS if role in item.roles]


@dataclass
class Shown:
    """One item on the page: its count (None when its service did not answer) and link."""

    item: Item
    count: int | None
    link: str | None

    @property
    def urgent(self) -> bool:
        return self.item.urgency == URGENT and bool(self.count)


@dataclass
class Home:
    items: list[Shown] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def link_of(item: Item, role: str) -> str | None:
    """The item's page, only if the role's menu has it (the gateway's first check, I6)."""
    if item.menu_key is None or not menu.allowed(role, item.menu_key):
        return None
    return url_for(menu.BY_KEY[item.menu_key].endpoint)


def timeout() -> float:
    return min(float(current_app.config.get("XUEJI_RPC_TIMEOUT", DEFAULT_TIMEOUT)),
               float(current_app.config.get("XUEJI_AGGREGATE_TIMEOUT", DEFAULT_TIMEOUT)))


def gather(pool: RpcPool, caller: Caller) -> Home:
    wanted = items_for(caller.role)
    services = sorted({item.service for item in wanted})
    outcomes = pool.call_many({svc: (svc, "home_counts") for svc in services}, caller=caller,
                              timeout=timeout()) if services else {}
    counts: dict[str, dict[str, Any]] = {}
    home = Home()
    for svc in services:
        outcome = outcomes[svc]
        if outcome.ok:
            counts[svc] = outcome.value or {}
            continue
        error = outcome.error
        if isinstance(error, Unauthenticated):
            raise error
        if not isinstance(error, ServiceUnavailable):
            log.error("home counts of %s failed: %r", svc, error)
        home.notices.append(f"{service_label(svc)}服务暂时不可用，相关待办事项暂时无法显示。")
    for item in wanted:
        answer = counts.get(item.service)
        count = answer.get(item.key) if answer is not None else None
        if answer is not None and count is None:
            continue  # the service does not give this role the item (e.g. no review scope)
        home.items.append(Shown(item, None if count is None else int(count), link_of(item, caller.role)))
    return home
