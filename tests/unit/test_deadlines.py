"""Counting rules, the holiday calendar, age rules and the London clock (RULES.md §3)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain import deadlines as dl
from models.domain.clock import LONDON, london_date, start_of_london_day
from models.domain.deadlines import CalendarRangeError, DeadlineRule, HolidayCalendar

CAL = england_and_wales_calendar(2024, 2036)


# --- HolidayCalendar -------------------------------------------------------------------------


def test_is_working_day_raises_when_date_outside_calendar_years() -> None:
    calendar = HolidayCalendar(first_year=2026, last_year=2026, dates=(date(2026, 12, 25),))

    with pytest.raises(CalendarRangeError, match="2027"):
        calendar.is_working_day(date(2027, 1, 4))


def test_calendar_range_error_is_a_value_error() -> None:
    assert issubclass(CalendarRangeError, ValueError)


def test_counting_raises_when_it_walks_off_the_calendar() -> None:
    calendar = HolidayCalendar(first_year=2026, last_year=2026)

    with pytest.raises(CalendarRangeError):
        dl.add_working_days(date(2026, 12, 30), 3, calendar)


def test_is_working_day_false_when_weekend_or_holiday() -> None:
    assert CAL.is_working_day(date(2026, 12, 24))  # Christmas Eve works
    assert CAL.is_working_day(date(2026, 12, 31))  # so does New Year's Eve
    assert CAL.is_working_day(date(2026, 1, 2))  # 2 Jan is Scottish only
    assert not CAL.is_working_day(date(2026, 12, 25))
    assert not CAL.is_working_day(date(2026, 1, 3))  # Saturday
    assert not CAL.is_working_day(date(2026, 1, 4))  # Sunday


def test_calendar_rejected_when_first_year_after_last_year() -> None:
    with pytest.raises(ValidationError, match="first_year"):
        HolidayCalendar(first_year=2027, last_year=2026)


def test_calendar_rejected_when_a_date_is_outside_its_years() -> None:
    with pytest.raises(ValidationError, match="2030-01-01"):
        HolidayCalendar(first_year=2026, last_year=2027, dates=(date(2030, 1, 1),))


def test_calendar_dates_sorted_and_unique_when_given_out_of_order() -> None:
    calendar = HolidayCalendar(
        first_year=2026,
        last_year=2026,
        dates=(date(2026, 12, 25), date(2026, 1, 1), date(2026, 12, 25)),
    )

    assert calendar.dates == (date(2026, 1, 1), date(2026, 12, 25))


def test_calendar_is_frozen_and_forbids_extra_fields() -> None:
    with pytest.raises(ValidationError):
        CAL.first_year = 2000  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        HolidayCalendar.model_validate({"first_year": 2026, "last_year": 2026, "region": "ENG"})


def test_calendar_survives_json_round_trip_when_sent_through_history() -> None:
    restored = HolidayCalendar.model_validate_json(CAL.model_dump_json())

    assert restored == CAL
    assert not restored.is_working_day(date(2027, 12, 28))
    assert restored.is_working_day(date(2027, 12, 29))


def test_next_and_previous_working_day_skip_holidays() -> None:
    assert CAL.next_working_day(date(2027, 12, 24)) == date(2027, 12, 29)
    assert CAL.previous_working_day(date(2027, 12, 29)) == date(2027, 12, 24)


# --- counting rules (§3.1) -------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, -1])
def test_add_working_days_raises_when_n_not_positive(n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        dl.add_working_days(date(2026, 1, 5), n, CAL)


@pytest.mark.parametrize("n", [0, -1])
def test_working_days_before_raises_when_n_not_positive(n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        dl.working_days_before(date(2026, 1, 5), n, CAL)


def test_first_counted_day_is_next_working_day_when_trigger_on_weekend() -> None:
    assert dl.add_working_days(date(2026, 1, 3), 1, CAL) == date(2026, 1, 5)  # Sat -> Mon
    assert dl.add_working_days(date(2026, 1, 4), 3, CAL) == date(2026, 1, 7)  # Sun -> Wed


def test_trigger_day_not_counted_when_it_is_a_working_day() -> None:
    assert dl.add_working_days(date(2026, 1, 5), 1, CAL) == date(2026, 1, 6)


def test_working_days_before_skips_holidays() -> None:
    assert dl.working_days_before(date(2026, 4, 7), 1, CAL) == date(2026, 4, 2)


def test_calendar_days_do_not_roll_when_landing_on_weekend() -> None:
    assert dl.add_calendar_days(date(2026, 5, 28), 30) == date(2026, 6, 27)  # Saturday


def test_weeks_do_not_roll_when_landing_on_holiday() -> None:
    assert dl.add_weeks(date(2026, 12, 18), 1) == date(2026, 12, 25)
    assert dl.add_weeks(date(2026, 12, 18), 0) == date(2026, 12, 18)  # "immediately"


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2028, 2, 29), 1, date(2028, 3, 29)),
        (date(2026, 8, 31), 1, date(2026, 9, 30)),
        (date(2027, 12, 31), 2, date(2028, 2, 29)),
        (date(2026, 1, 14), 2, date(2026, 3, 14)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 3, 31), 0, date(2026, 3, 31)),
    ],
)
def test_add_months_uses_corresponding_date_or_month_end(
    start: date, months: int, expected: date
) -> None:
    assert dl.add_months(start, months) == expected


def test_negative_periods_raise_when_counting_forward() -> None:
    with pytest.raises(ValueError, match="negative"):
        dl.add_months(date(2026, 1, 1), -1)
    with pytest.raises(ValueError, match="negative"):
        dl.add_calendar_days(date(2026, 1, 1), -1)
    with pytest.raises(ValueError, match="negative"):
        dl.add_weeks(date(2026, 1, 1), -1)


# --- HESC rule 12 (§3.1 rule 5) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_day", "expected"),
    [
        pytest.param(date(2026, 3, 10), date(2026, 3, 10), id="working-day-unchanged"),
        pytest.param(date(2026, 3, 14), date(2026, 3, 16), id="saturday-to-monday"),
        pytest.param(date(2026, 12, 25), date(2027, 1, 4), id="christmas-to-after-new-year"),
        pytest.param(date(2027, 1, 1), date(2027, 1, 4), id="new-years-day"),
        pytest.param(date(2027, 12, 31), date(2028, 1, 4), id="new-year-substitute-skipped"),
        pytest.param(date(2026, 12, 24), date(2026, 12, 24), id="christmas-eve-works"),
        pytest.param(date(2026, 8, 1), date(2026, 9, 1), id="august-bank-holiday-31-aug"),
        pytest.param(date(2027, 8, 31), date(2027, 9, 1), id="31-august"),
        pytest.param(date(2029, 8, 15), date(2029, 9, 3), id="august-to-monday-3-sep"),
        pytest.param(date(2026, 7, 31), date(2026, 7, 31), id="31-july-friday"),
        pytest.param(date(2026, 1, 2), date(2026, 1, 2), id="2-jan-is-a-working-day"),
    ],
)
def test_appeal_roll_forward_follows_hesc_rule_12(last_day: date, expected: date) -> None:
    assert dl.appeal_roll_forward(last_day, CAL) == expected


def test_appeal_roll_forward_is_one_pass_when_weekend_before_christmas() -> None:
    # Sun 24 Dec 2028 is outside the r12(3)(a) window: r12(2) moves it to the next working
    # day, Wed 27 Dec; the earlier (safer) reading of a rule that asks where time *ends*.
    assert dl.appeal_roll_forward(date(2028, 12, 24), CAL) == date(2028, 12, 27)
    # Likewise Sat 31 Jul 2027 moves to Mon 2 Aug 2027, not to September.
    assert dl.appeal_roll_forward(date(2027, 7, 31), CAL) == date(2027, 8, 2)


# --- the deadline rules ----------------------------------------------------------------------


def test_appeal_deadline_ignores_certificate_when_section_i_only() -> None:
    appeal = dl.appeal_deadline(date(2026, 1, 14), date(2026, 3, 5), True, CAL)

    assert appeal.certificate_plus_1_month is None
    assert appeal.appeal_deadline == date(2026, 3, 16)  # Sat 14 Mar -> Mon 16 Mar


def test_appeal_deadline_uses_decision_limb_when_no_certificate() -> None:
    appeal = dl.appeal_deadline(date(2026, 1, 14), None, False, CAL)

    assert appeal.certificate_plus_1_month is None
    assert appeal.later_of_unadjusted == date(2026, 3, 14)


def test_appeal_deadline_keeps_decision_limb_when_certificate_limb_is_earlier() -> None:
    appeal = dl.appeal_deadline(date(2026, 1, 14), date(2026, 1, 20), False, CAL)

    assert appeal.certificate_plus_1_month == date(2026, 2, 20)
    assert appeal.later_of_unadjusted == date(2026, 3, 14)


def test_deemed_certificate_uses_fallback_when_notice_comes_after_arrange_by() -> None:
    arrange_by = dl.mediation_must_be_arranged_by(date(2026, 3, 2))  # Wed 1 Apr 2026

    due = dl.deemed_certificate_due_by(date(2026, 4, 20), arrange_by, CAL)

    assert due == date(2026, 4, 8)  # 2 Apr, then Good Friday and Easter Monday skipped


def test_deemed_certificate_raises_when_no_trigger() -> None:
    with pytest.raises(ValueError, match="needs"):
        dl.deemed_certificate_due_by(None, None, CAL)


def test_latest_notice_dates_named_safest_and_literal() -> None:
    notice = dl.latest_notice_dates(date(2026, 4, 9), CAL)  # Thu after Easter

    assert notice.literal == date(2026, 3, 31)
    assert notice.safest == date(2026, 3, 30)


def test_deadline_rule_ids_follow_rules_table() -> None:
    assert [rule.rule_id for rule in DeadlineRule] == [f"DL-{n:02d}" for n in range(1, 14)]
    assert DeadlineRule.APPEAL_DEADLINE.rule_id == "DL-09"
    assert all(rule.value == rule.name.lower() for rule in DeadlineRule)


# --- age (AGE-01/02) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dob", "csa_ends"),
    [
        pytest.param(date(2010, 7, 15), date(2026, 6, 26), id="16-in-summer-holiday"),
        pytest.param(date(2010, 8, 31), date(2026, 6, 26), id="16-on-31-aug"),
        pytest.param(date(2010, 9, 1), date(2027, 6, 25), id="16-on-1-sep"),
        pytest.param(date(2010, 5, 10), date(2026, 6, 26), id="16-before-leaving-date"),
        pytest.param(date(2010, 6, 26), date(2026, 6, 26), id="16-on-leaving-date"),
        pytest.param(date(2010, 6, 27), date(2026, 6, 26), id="16-day-after-leaving-date"),
        pytest.param(date(2012, 2, 29), date(2028, 6, 30), id="29-feb-birth"),
    ],
)
def test_compulsory_school_age_ends_last_friday_in_june_of_school_year(
    dob: date, csa_ends: date
) -> None:
    assert dl.compulsory_school_age_ends(dob) == csa_ends
    assert dl.young_person_from(dob) == csa_ends + timedelta(days=1)


def test_compulsory_school_age_ends_in_june_before_when_16_before_autumn_term() -> None:
    dob = date(2010, 9, 1)  # 16 on Tue 1 Sep 2026

    assert dl.compulsory_school_age_ends(dob, autumn_term_starts=date(2026, 9, 3)) == date(
        2026, 6, 26
    )
    assert dl.compulsory_school_age_ends(dob, autumn_term_starts=date(2026, 9, 1)) == date(
        2027, 6, 25
    )


def test_compulsory_school_age_raises_when_autumn_term_in_wrong_year() -> None:
    with pytest.raises(ValueError, match="autumn_term_starts"):
        dl.compulsory_school_age_ends(date(2010, 9, 1), autumn_term_starts=date(2027, 9, 2))


def test_young_person_until_28_feb_when_born_29_feb_and_25th_birthday_not_leap() -> None:
    dob = date(2004, 2, 29)

    assert dl.birthday(dob, 25) == date(2029, 3, 1)
    assert dl.young_person_until_inclusive(dob) == date(2029, 2, 28)


def test_young_person_until_day_before_25th_birthday() -> None:
    assert dl.young_person_until_inclusive(date(2010, 7, 15)) == date(2035, 7, 14)
    assert dl.young_person_until_inclusive(date(2008, 2, 29)) == date(2033, 2, 28)
    assert dl.young_person_until_inclusive(date(2012, 2, 29)) == date(2037, 2, 28)
    assert dl.young_person_until_inclusive(date(2011, 3, 1)) == date(2036, 2, 29)


@pytest.mark.parametrize(
    ("on", "status"),
    [
        (date(2010, 7, 15), "child"),
        (date(2026, 6, 26), "child"),
        (date(2026, 6, 27), "young_person"),
        (date(2035, 7, 14), "young_person"),
        (date(2035, 7, 15), "adult"),
    ],
)
def test_person_status_changes_at_csa_end_and_25th_birthday(on: date, status: str) -> None:
    dob = date(2010, 7, 15)

    assert dl.person_status(dob, on) == status
    assert dl.is_young_person(dob, on) is (status == "young_person")


def test_person_status_raises_when_date_before_birth() -> None:
    with pytest.raises(ValueError, match="before the date of birth"):
        dl.person_status(date(2010, 7, 15), date(2010, 7, 14))


def test_last_friday_in_june_when_30_june_is_friday_or_not() -> None:
    assert dl.last_friday_in_june(2028) == date(2028, 6, 30)
    assert dl.last_friday_in_june(2026) == date(2026, 6, 26)
    assert dl.last_friday_in_june(2029) == date(2029, 6, 29)


# --- clock -----------------------------------------------------------------------------------


def test_london_date_raises_when_instant_is_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        london_date(datetime(2026, 6, 1, 12, 0))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        pytest.param(datetime(2026, 6, 1, 23, 30, tzinfo=UTC), date(2026, 6, 2), id="bst-late"),
        pytest.param(datetime(2026, 1, 15, 23, 30, tzinfo=UTC), date(2026, 1, 15), id="gmt-late"),
        pytest.param(
            datetime(2026, 6, 2, 0, 30, tzinfo=timezone(timedelta(hours=2))),
            date(2026, 6, 1),
            id="other-offset",
        ),
    ],
)
def test_london_date_uses_uk_local_time(instant: datetime, expected: date) -> None:
    assert london_date(instant) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        pytest.param(date(2026, 1, 15), datetime(2026, 1, 15, 0, 0, tzinfo=UTC), id="gmt"),
        pytest.param(date(2026, 6, 1), datetime(2026, 5, 31, 23, 0, tzinfo=UTC), id="bst"),
        pytest.param(date(2026, 3, 29), datetime(2026, 3, 29, 0, 0, tzinfo=UTC), id="spring-fwd"),
        pytest.param(date(2026, 3, 30), datetime(2026, 3, 29, 23, 0, tzinfo=UTC), id="after-fwd"),
        pytest.param(date(2026, 10, 25), datetime(2026, 10, 24, 23, 0, tzinfo=UTC), id="fall-back"),
        pytest.param(date(2026, 10, 26), datetime(2026, 10, 26, 0, 0, tzinfo=UTC), id="after-back"),
    ],
)
def test_start_of_london_day_is_right_across_clock_changes(day: date, expected: datetime) -> None:
    start = start_of_london_day(day)

    assert start == expected
    assert start.utcoffset() == timedelta(0)
    assert london_date(start) == day
    assert london_date(start - timedelta(microseconds=1)) == day - timedelta(days=1)


def test_london_zone_is_europe_london() -> None:
    assert str(LONDON) == "Europe/London"
