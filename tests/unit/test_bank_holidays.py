"""England & Wales bank holidays from python-holidays (RULES.md §3.1 rules 2 and 8, §3.4, A1)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from dateutil.easter import easter

from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain.deadlines import HolidayCalendar

MONDAY = 0


def _first_monday(year: int, month: int) -> date:
    d = date(year, month, 1)
    return d + timedelta(days=(MONDAY - d.weekday()) % 7)


def _last_monday(year: int, month: int) -> date:
    d = date(year, month + 1, 1) - timedelta(days=1)
    return d - timedelta(days=(d.weekday() - MONDAY) % 7)


def _bfda_weekday_holidays(year: int) -> set[date]:
    """An independent reading of the Banking and Financial Dealings Act 1971 schedule 1 and
    the usual royal proclamations (New Year's Day and substitutes), plus Christmas Day and
    Good Friday: weekdays only. No one-off days are known for 2024-2035."""
    days: set[date] = set()
    new_year = date(year, 1, 1)
    days.add(new_year if new_year.weekday() < 5 else _first_monday(year, 1))
    days.add(easter(year) - timedelta(days=2))
    days.add(easter(year) + timedelta(days=1))
    days.add(_first_monday(year, 5))
    days.add(_last_monday(year, 5))
    days.add(_last_monday(year, 8))
    christmas, boxing = date(year, 12, 25), date(year, 12, 26)
    weekend = {5, 6}
    if christmas.weekday() not in weekend and boxing.weekday() not in weekend:
        days |= {christmas, boxing}
    elif christmas.weekday() == 4:  # Fri: Boxing Day (Sat) moves to Mon 28
        days |= {christmas, date(year, 12, 28)}
    elif christmas.weekday() == 5:  # Sat/Sun: both move, to Mon 27 and Tue 28
        days |= {date(year, 12, 27), date(year, 12, 28)}
    else:  # Sun: Boxing Day Mon 26 stands, Christmas moves to Tue 27
        days |= {boxing, date(year, 12, 27)}
    return days


@pytest.mark.parametrize("year", range(2024, 2036))
def test_weekday_holidays_match_independent_bfda_reading_when_2024_to_2035(year: int) -> None:
    calendar = england_and_wales_calendar(year, year)

    assert {d for d in calendar.dates if d.weekday() < 5} == _bfda_weekday_holidays(year)


@pytest.mark.parametrize(
    "proclaimed",
    [
        pytest.param(date(2022, 6, 2), id="spring-bank-holiday-moved-2022"),
        pytest.param(date(2022, 6, 3), id="platinum-jubilee"),
        pytest.param(date(2022, 9, 19), id="state-funeral"),
        pytest.param(date(2023, 5, 8), id="coronation"),
    ],
)
def test_calendar_includes_one_off_days_when_proclaimed(proclaimed: date) -> None:
    calendar = england_and_wales_calendar(2022, 2023)

    assert not calendar.is_working_day(proclaimed)


@pytest.mark.parametrize(
    "elsewhere",
    [
        pytest.param(date(2026, 1, 2), id="scotland-2-january"),
        pytest.param(date(2026, 3, 17), id="northern-ireland-st-patrick"),
        pytest.param(date(2026, 7, 13), id="northern-ireland-battle-of-the-boyne"),
        pytest.param(date(2026, 8, 3), id="scotland-summer"),
        pytest.param(date(2026, 11, 30), id="scotland-st-andrew"),
    ],
)
def test_calendar_excludes_holidays_when_only_outside_england_and_wales(elsewhere: date) -> None:
    assert england_and_wales_calendar(2026, 2026).is_working_day(elsewhere)


def test_calendar_covers_exactly_the_requested_years() -> None:
    calendar = england_and_wales_calendar(2025, 2027)

    assert (calendar.first_year, calendar.last_year) == (2025, 2027)
    assert {d.year for d in calendar.dates} == {2025, 2026, 2027}
    assert isinstance(calendar, HolidayCalendar)


def test_extra_day_added_when_proclaimed_after_library_release() -> None:
    newly_proclaimed = date(2026, 6, 5)

    calendar = england_and_wales_calendar(2026, 2026, extra=[newly_proclaimed])

    assert not calendar.is_working_day(newly_proclaimed)
    assert england_and_wales_calendar(2026, 2026).is_working_day(newly_proclaimed)


def test_extra_day_ignored_when_outside_requested_years() -> None:
    calendar = england_and_wales_calendar(2026, 2026, extra=[date(2030, 6, 5)])

    assert calendar == england_and_wales_calendar(2026, 2026)


def test_weekend_holidays_kept_harmlessly_when_substitute_exists() -> None:
    calendar = england_and_wales_calendar(2027, 2027)

    assert date(2027, 12, 25) in calendar.dates  # a Saturday
    assert not calendar.is_working_day(date(2027, 12, 27))  # its substitute


def test_calendar_raises_when_first_year_after_last_year() -> None:
    with pytest.raises(ValueError, match="after last_year"):
        england_and_wales_calendar(2027, 2026)
