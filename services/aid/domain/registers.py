"""The enrolled register and its consequences (A1: needy ⊆ enrolled).

Roster owns statuses and decides which of them mean the student has left (the `left`
flag of its events); aid trusts that flag rather than keeping its own list of statuses.
"""

from __future__ import annotations

from dataclasses import dataclass

# 未报到 (R4): such students take no part in processing, so none in aid either.
NOT_REPORTED = "not_reported"


def enrolment_refusal(status: str, left: bool) -> str | None:
    """Why a student does not count as enrolled for aid purposes, or None if they do."""
    if left:
        return "学生已离校，不在在校生库中"
    if status == NOT_REPORTED:
        return "学生未报到，不在在校生库中"
    return None


def is_enrolled(status: str, left: bool) -> bool:
    """Only enrolled students may be identified as needy or receive aid (A1)."""
    return enrolment_refusal(status, left) is None


@dataclass(frozen=True)
class StatusChange:
    """What aid needs to know of a roster status change (学籍异动)."""

    change_id: int
    new_status: str
    left: bool
    revokes_change_id: int | None = None


def is_newer_change(last_applied: int | None, change_id: int) -> bool:
    """Roster numbers its changes in order; an older one arriving late must not win."""
    return last_applied is None or change_id > last_applied


def stop_instalments_after(change: StatusChange, stopped: bool) -> bool:
    """Whether future instalments stay stopped after `change`.

    Leaving (graduation, withdrawal, death, transfer out…) stops them. Only a revocation
    that puts the student back on the roll lifts a stop, because the change that caused
    it has been undone; any other change leaves the decision as it was.
    """
    if change.left:
        return True
    if change.revokes_change_id is not None:
        return False
    return stopped
