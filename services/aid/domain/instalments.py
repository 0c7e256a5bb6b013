"""Instalments of an award: the plan, and the rule that a leaver gets no further payment (A1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

DUE = "due"
PAID = "paid"
STOPPED = "stopped"
STATE_LABELS = {DUE: "待发放", PAID: "已发放", STOPPED: "已停发"}


@dataclass(frozen=True)
class Planned:
    seq: int
    due_on: date
    amount: int


def plan(amount: int, count: int, first_due: date) -> list[Planned]:
    """`count` monthly instalments from `first_due`; the remainder of the split goes on the last."""
    count = max(count, 1)
    base, rest = divmod(amount, count)
    found = []
    for i in range(count):
        month = first_due.month - 1 + i
        due = date(first_due.year + month // 12, month % 12 + 1, min(first_due.day, 28))
        found.append(Planned(i + 1, due, base + (rest if i == count - 1 else 0)))
    return found


def decide(state: str, due_on: date, today: date, stop_instalments: bool) -> str:
    """What a payment run does with one instalment: pay it, stop it, or leave it due."""
    if state != DUE or due_on > today:
        return state
    return STOPPED if stop_instalments else PAID
