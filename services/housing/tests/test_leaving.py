"""Release rules (H5): a change saying the student left frees the bed; stale news loses; suspension
frees it only where configured; a revocation gives the bed back."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.housing.domain.leaving import (
    StatusNews,
    is_newer_change,
    release_date,
    release_reason,
    releases_bed,
    restore_refusal,
    restores_bed,
    suspension_releases_setting,
)


@pytest.mark.parametrize("status", ["graduated", "withdrawn", "expelled", "deceased", "transferred_out",
                                    "something_new"])
def test_leaving_releases_the_bed_whatever_the_status(status: str) -> None:
    news = StatusNews(change_id=1, new_status=status, left=True)
    assert releases_bed(news, holds_bed=True) is True
    assert release_reason(news) == status


@pytest.mark.parametrize("status", ["suspended", "graduated", "enrolled"])
def test_a_change_that_does_not_say_left_keeps_the_bed(status: str) -> None:
    assert releases_bed(StatusNews(change_id=1, new_status=status, left=False), holds_bed=True) is False


def test_nothing_to_release_without_a_bed() -> None:
    assert releases_bed(StatusNews(change_id=1, new_status="graduated", left=True), holds_bed=False) is False


def test_only_newer_changes_apply() -> None:
    assert is_newer_change(None, 1) is True
    assert is_newer_change(5, 6) is True
    assert is_newer_change(6, 6) is False
    assert is_newer_change(7, 6) is False


def test_release_date_is_the_campus_day() -> None:
    # 23:30 UTC on 30 June is already 1 July in Beijing.
    assert release_date(datetime(2027, 6, 30, 23, 30, tzinfo=UTC)) == date(2027, 7, 1)
    assert release_date(datetime(2027, 6, 30, 10, 0)) == date(2027, 6, 30)


# --- suspension (configurable) and revocation (issue 5) ----------------------------------
def test_suspension_keeps_the_bed_unless_configured() -> None:
    suspended = StatusNews(change_id=2, new_status="suspended", left=False)
    assert releases_bed(suspended, holds_bed=True) is False
    assert releases_bed(suspended, holds_bed=True, suspension_releases=True) is True
    assert releases_bed(suspended, holds_bed=False, suspension_releases=True) is False
    # the setting concerns suspension only
    enrolled = StatusNews(change_id=3, new_status="enrolled", left=False)
    assert releases_bed(enrolled, holds_bed=True, suspension_releases=True) is False


@pytest.mark.parametrize(("raw", "expected"), [(None, False), ("", False), ("false", False), ("0", False),
                                               ("no", False), ("true", True), ("1", True), (" TRUE ", True),
                                               ("yes", True), ("on", True)])
def test_suspension_setting(raw: str | None, expected: bool) -> None:
    assert suspension_releases_setting(raw) is expected


def test_a_mistyped_suspension_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="HOUSING_SUSPENSION_RELEASES_BED"):
        suspension_releases_setting("ture")


def test_a_revocation_restores_unless_its_status_releases() -> None:
    back = StatusNews(change_id=8, new_status="enrolled", left=False, revokes_change_id=7)
    assert restores_bed(back) is True
    # not a revocation: a resumption does not give a bed back by itself
    assert restores_bed(StatusNews(change_id=8, new_status="enrolled", left=False)) is False
    # back to a leaving status, or to a suspension that releases: nothing to give back
    assert restores_bed(StatusNews(change_id=8, new_status="withdrawn", left=True, revokes_change_id=7)) is False
    to_suspended = StatusNews(change_id=8, new_status="suspended", left=False, revokes_change_id=7)
    assert restores_bed(to_suspended) is True
    assert restores_bed(to_suspended, suspension_releases=True) is False


def test_a_restore_never_moves_anyone() -> None:
    assert restore_refusal(holds_other_bed=False, bed_occupant=None) is None
    assert restore_refusal(holds_other_bed=False, bed_occupant="202301010103") == "bed_taken"
    assert restore_refusal(holds_other_bed=True, bed_occupant=None) == "already_housed"
