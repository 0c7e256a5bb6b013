"""Release rules (H5): a change saying the student left frees the bed; stale news loses."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.housing.domain.leaving import (
    StatusNews,
    is_newer_change,
    release_date,
    release_reason,
    releases_bed,
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
