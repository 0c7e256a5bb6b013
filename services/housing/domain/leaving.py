"""When a bed is freed because its student left (H5), when a revocation gives it back,
and which roster news is current.

Roster owns statuses and decides which of them mean the student has left (the `left`
flag of its events: graduation, withdrawal, expulsion, death, transfer-out…); housing
trusts that flag rather than keeping its own list of statuses. The one status housing
names itself is suspension, whose effect on the bed is the institution's choice (issue 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

# Release dates are calendar days on campus.
CAMPUS_TZ = ZoneInfo("Asia/Shanghai")

SUSPENDED = "suspended"  # roster's status code for 休学
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class StatusNews:
    """A roster status change as housing needs it."""

    change_id: int
    new_status: str
    left: bool
    revokes_change_id: int | None = None


def is_newer_change(last_applied: int | None, change_id: int) -> bool:
    """Roster numbers its changes in order; an older one arriving late must not win
    (e.g. a graduation arriving after its own revocation)."""
    return last_applied is None or change_id > last_applied


def suspension_releases_setting(raw: str | None) -> bool:
    """`HOUSING_SUSPENSION_RELEASES_BED`: unset means keep the bed (the default)."""
    value = (raw or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"HOUSING_SUSPENSION_RELEASES_BED must be true or false, not {raw!r}")


def releases_bed(news: StatusNews, holds_bed: bool, *, suspension_releases: bool = False) -> bool:
    """A change that says the student left frees their bed, whatever the new status is;
    a suspension frees it only where the institution chose so."""
    if not holds_bed:
        return False
    return news.left or (suspension_releases and news.new_status == SUSPENDED)


def restores_bed(news: StatusNews, *, suspension_releases: bool = False) -> bool:
    """A revocation gives back the bed the revoked change released, unless the status it
    returns to would itself release it (then there is nothing to give back)."""
    return news.revokes_change_id is not None and not releases_bed(
        news, holds_bed=True, suspension_releases=suspension_releases)


def restore_refusal(holds_other_bed: bool, bed_occupant: str | None) -> str | None:
    """Why the released bed cannot be given back, or None. Nobody is moved to make room:
    a bed given to someone else meanwhile stays theirs, and the student is left for the
    housing centre to place."""
    if holds_other_bed:
        return "already_housed"
    if bed_occupant is not None:
        return "bed_taken"
    return None


def release_reason(news: StatusNews) -> str:
    return news.new_status


def release_date(at: datetime) -> date:
    """The campus calendar day of a release (naive datetimes are taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(CAMPUS_TZ).date()
