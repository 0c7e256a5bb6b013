"""Quotas (名额) and funds allocated top-down: programme → college → class (A2).

A quota row limits places, funds or both (None: not limited by that; at least one is set).
A child allocation may not exceed what its parent has left to give; approvals take one place
(and its amount) from the class, its college and the programme at once, so no level is ever
over-allocated. A child without a limit of its own shares what its parent has: its parent's
limit still holds, since every approval counts at every level.
"""

from __future__ import annotations

from dataclasses import dataclass

PROGRAMME = "programme"
COLLEGE = "college"
CLASS = "class"
LEVELS = (PROGRAMME, COLLEGE, CLASS)
PARENT = {COLLEGE: PROGRAMME, CLASS: COLLEGE}
LEVEL_LABELS = {PROGRAMME: "全校", COLLEGE: "学院", CLASS: "班级"}


@dataclass(frozen=True)
class Quota:
    level: str
    unit_code: str  # "" for the programme level
    places: int | None  # None: not limited by places (funds only)
    funds: int | None = None  # 元; None: not limited by funds
    used_places: int = 0
    used_funds: int = 0


def unit_of(level: str, college_code: str, class_code: str) -> str:
    return {PROGRAMME: "", COLLEGE: college_code, CLASS: class_code}[level]


def allocation_problems(level: str, places: int | None, funds: int | None, parent: Quota | None,
                        siblings_places: int, siblings_funds: int, current: Quota | None) -> list[str]:
    """Whether a (re)allocation of `places`/`funds` at `level` fits its parent and what is already used.

    `siblings_*` are the totals already given to the parent's other children (not this unit; children
    without a limit count 0).
    """
    found = []
    if level not in LEVELS:
        found.append("分配层级无效")
        return found
    if places is None and funds is None:
        found.append("请填写名额或资金（至少一项）")
    if (places is not None and places < 0) or (funds is not None and funds < 0):
        found.append("名额和资金不能为负数")
    if level != PROGRAMME:
        if parent is None:
            found.append(f"请先分配{LEVEL_LABELS[PARENT[level]]}名额")
        else:
            if places is not None and parent.places is not None and siblings_places + places > parent.places:
                found.append(f"超出{LEVEL_LABELS[parent.level]}名额：可分配 {parent.places - siblings_places} 个")
            if funds is not None and parent.funds is not None and siblings_funds + funds > parent.funds:
                found.append(f"超出{LEVEL_LABELS[parent.level]}资金：可分配 {parent.funds - siblings_funds} 元")
    if current is not None:
        if places is not None and places < current.used_places:
            found.append(f"已使用 {current.used_places} 个名额，不能减少到 {places} 个")
        if funds is not None and funds < current.used_funds:
            found.append(f"已使用 {current.used_funds} 元，不能减少到 {funds} 元")
    return found


def has_room(quota: Quota, amount: int) -> bool:
    """The same condition the conditional UPDATE applies in the database."""
    if quota.places is not None and quota.used_places + 1 > quota.places:
        return False
    return quota.funds is None or quota.used_funds + amount <= quota.funds
