"""End reasons of stays are labelled in housing, the one place of these labels (issue 6)."""

from __future__ import annotations

import pytest

from services.housing.domain.end_reasons import CHECKED_OUT, MOVED, end_reason_label


@pytest.mark.parametrize(("code", "label"), [(MOVED, "调整床位"), (CHECKED_OUT, "退宿"), ("graduated", "毕业"),
                                             ("attendance", "肄业"), ("transferred_out", "转出"),
                                             ("suspended", "休学"), (None, ""), ("", "")])
def test_each_reason_has_its_chinese_label(code: str | None, label: str) -> None:
    assert end_reason_label(code) == label


def test_a_status_roster_adds_later_shows_as_its_code_not_as_nothing() -> None:
    assert end_reason_label("exchange_abroad") == "exchange_abroad"
