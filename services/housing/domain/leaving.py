"""When a bed is freed because its student left (H5), and which roster news is current.

Roster owns statuses and decides which of them mean the student has left (the `left`
flag of its events: graduation, withdrawal, expulsion, death, transfer-out…); housing
trusts that flag rather than keeping its own list of statuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

# Release dates are calendar days on campus.
CAMPUS_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class StatusNews:
    """A roster status change as housing needs it."""

    change_id: int
    new_status: str
    left: bool


def is_newer_change(last_applied: int | None, change_id: int) -> bool:
    """Roster numbers its changes in order; an older one arriving late must not win
    (e.g. a graduation arriving after its own revocation)."""
    return last_applied is None or change_id > last_applied


def releases_bed(news: StatusNews, holds_bed: bool) -> bool:
    """A change that says the student left frees their bed, whatever the new status is."""
    return news.left and holds_bed


def release_reason(news: StatusNews) -> str:
    return news.new_status


def release_date(at: datetime) -> date:
    """The campus calendar day of a release (naive datetimes are taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(CAMPUS_TZ).date()
