"""England & Wales bank holidays as a :class:`HolidayCalendar` (RULES.md §3.1 rules 2 and 8, §3.4).

Not part of the pure domain: it reads the ``holidays`` package's tables. Workflows get the
result through the ``load_bank_holidays`` activity so that replays see the same calendar.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import date

import holidays

from models.domain.deadlines import HolidayCalendar


def england_and_wales_calendar(
    first_year: int, last_year: int, extra: Iterable[date] = ()
) -> HolidayCalendar:
    """Bank holidays in England & Wales from ``first_year`` to ``last_year`` inclusive.

    From python-holidays' ``UK(subdiv="ENG")``: the statutory days, Christmas Day and Good
    Friday, substitute ("observed") days and one-off proclaimed days such as 19 Sep 2022 and
    8 May 2023; not Scotland's 2 January or Northern Ireland's days (A1). ``extra`` adds
    days proclaimed after the library was released (from settings); those outside the
    requested years are ignored. Holidays falling on a weekend stay in the list, harmlessly.
    """
    if first_year > last_year:
        raise ValueError(f"first_year {first_year} is after last_year {last_year}")
    return _calendar(first_year, last_year, frozenset(extra))


@functools.lru_cache(maxsize=32)
def _calendar(first_year: int, last_year: int, extra: frozenset[date]) -> HolidayCalendar:
    """Built once per span: the library computes every year's table anew (a millisecond or
    more for each API create), and the result is a frozen value."""
    # country_holidays("GB") builds holidays.UK (typed entry point; the class is untyped).
    table = holidays.country_holidays("GB", subdiv="ENG", years=range(first_year, last_year + 1))
    days = set(table.keys())
    days.update(d for d in extra if first_year <= d.year <= last_year)
    return HolidayCalendar(first_year=first_year, last_year=last_year, dates=tuple(sorted(days)))
