"""The working-day calendar of transfer deadlines (T4): holidays, swapped workdays (调休), years
the library does not know, overrides entered by staff, and deadlines across the year end."""

from __future__ import annotations

from datetime import date

import pytest

from services.common.workdays import WorkdayCalendar

PLAIN = WorkdayCalendar()


def test_holidays_and_swapped_workdays_of_2026() -> None:
    assert not PLAIN.is_workday(date(2026, 10, 1))  # National Day
    assert not PLAIN.is_workday(date(2026, 9, 25))  # Mid-Autumn Festival, a Friday
    assert PLAIN.is_workday(date(2026, 9, 20))  # a Sunday worked in exchange (调休)
    assert PLAIN.is_workday(date(2026, 10, 10))  # a Saturday worked in exchange
    assert not PLAIN.is_workday(date(2026, 10, 11))  # an ordinary Sunday


def test_a_deadline_skips_the_golden_week() -> None:
    # Filed on Wednesday 30 September: 1–7 October are off, 8, 9, 10 (Saturday, worked) count.
    assert PLAIN.add_workdays(date(2026, 9, 30), 3) == date(2026, 10, 10)
    assert PLAIN.add_workdays(date(2026, 9, 30), 4) == date(2026, 10, 12)
    assert PLAIN.add_workdays(date(2026, 9, 30), 0) == date(2026, 9, 30)
    with pytest.raises(ValueError):
        PLAIN.add_workdays(date(2026, 9, 30), -1)


def test_years_the_library_does_not_know_fall_back_to_weekdays_until_staff_enter_them() -> None:
    assert not PLAIN.known(2027) and PLAIN.known(2026)
    assert PLAIN.is_workday(date(2027, 1, 1))  # a Friday; unknown year: Monday–Friday
    entered = WorkdayCalendar({date(2027, 1, 1): False, date(2027, 1, 2): False, date(2027, 2, 7): True})
    assert entered.known(2027)
    assert not entered.is_workday(date(2027, 1, 1))
    assert entered.is_workday(date(2027, 2, 7))  # a Sunday worked in exchange
    assert not entered.is_workday(date(2027, 1, 3))  # still a Sunday


def test_deadlines_across_the_year_end() -> None:
    # 20 working days from Monday 14 December 2026: 13 in 2026 (15–31 Dec), 7 in 2027 (1–11 Jan).
    assert PLAIN.add_workdays(date(2026, 12, 14), 20) == date(2027, 1, 11)
    holiday = WorkdayCalendar({date(2027, 1, 1): False})
    assert holiday.add_workdays(date(2026, 12, 14), 20) == date(2027, 1, 12)
    assert holiday.workdays_left(date(2026, 12, 30), date(2027, 1, 12)) == 8
    assert holiday.workdays_left(date(2027, 1, 12), date(2027, 1, 12)) == 0
    assert holiday.workdays_left(date(2027, 2, 1), date(2027, 1, 12)) == 0


def test_an_override_beats_the_library() -> None:
    moved = WorkdayCalendar({date(2026, 10, 8): False, date(2026, 10, 11): True})
    assert not moved.is_workday(date(2026, 10, 8)) and moved.is_workday(date(2026, 10, 11))
