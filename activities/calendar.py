"""Bank holidays for workflows: loaded by an activity so that replays see the same calendar."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from temporalio import activity

from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain.deadlines import HolidayCalendar
from models.messages import LOAD_BANK_HOLIDAYS, HolidayRange


class CalendarActivities:
    def __init__(self, extra_holidays: Iterable[date] = ()) -> None:
        self._extra = tuple(extra_holidays)

    @activity.defn(name=LOAD_BANK_HOLIDAYS)
    async def load_bank_holidays(self, years: HolidayRange) -> HolidayCalendar:
        """England & Wales bank holidays (substitute and proclaimed days included)."""
        # Computed once per range in this process (every referral of a year asks the same).
        return england_and_wales_calendar(years.first_year, years.last_year, self._extra)
