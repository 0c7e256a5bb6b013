"""Working days: Chinese public holidays and swapped workdays (调休), for roster's school days (R16)
and transfer's deadlines (T4).

Overrides say of a day that it is, or is not, a working day (transfer's editable calendar: staff
enter or import the State Council's yearly notice). Without an override a day follows
chinese-calendar for the years it knows, else plain Monday–Friday.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import chinese_calendar


@dataclass(frozen=True)
class WorkdayCalendar:
    overrides: Mapping[date, bool] = field(default_factory=dict)  # day → is a working day

    def is_workday(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:  # a year the library does not know yet
            return day.weekday() < 5

    def add_workdays(self, start: date, days: int) -> date:
        """The day `days` working days after `start` (the start day itself not counted)."""
        if days < 0:
            raise ValueError("days must be ≥ 0")
        day = start
        while days:
            day += timedelta(days=1)
            if self.is_workday(day):
                days -= 1
        return day

    def workdays_left(self, today: date, deadline: date) -> int:
        """Working days after `today` up to and including `deadline` (0 when it is today or past)."""
        count, day = 0, today
        while day < deadline:
            day += timedelta(days=1)
            if self.is_workday(day):
                count += 1
        return count

    def known(self, year: int) -> bool:
        """Whether chinese-calendar or an override covers the year (else staff should enter its notice)."""
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
            return True
        except NotImplementedError:
            return any(d.year == year for d in self.overrides)
