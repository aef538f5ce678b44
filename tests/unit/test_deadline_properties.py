"""Hypothesis properties of the counting rules (RULES.md §3.1) and the calculator."""

from __future__ import annotations

import calendar as stdlib_calendar
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain import deadlines as dl
from models.domain.timescales import TimescalesRequest, compute_timescales, years_needed

CAL = england_and_wales_calendar(2014, 2036)

days = st.dates(min_value=date(2015, 1, 1), max_value=date(2034, 12, 31))
working_day_counts = st.integers(min_value=1, max_value=60)
month_counts = st.integers(min_value=0, max_value=24)


def working_days_in(first_exclusive: date, last_inclusive: date) -> int:
    count, d = 0, first_exclusive + timedelta(days=1)
    while d <= last_inclusive:
        count += CAL.is_working_day(d)
        d += timedelta(days=1)
    return count


def in_window(d: date) -> bool:
    return d.month == 8 or dl.in_christmas_window(d)


# --- working days --------------------------------------------------------------------------------


@given(days, working_day_counts)
def test_add_working_days_lands_on_a_working_day(start: date, n: int) -> None:
    assert CAL.is_working_day(dl.add_working_days(start, n, CAL))


@given(days, working_day_counts)
def test_add_working_days_strictly_increases_with_n(start: date, n: int) -> None:
    assert dl.add_working_days(start, n, CAL) < dl.add_working_days(start, n + 1, CAL)
    assert dl.add_working_days(start, 1, CAL) > start


@given(days, working_day_counts)
def test_exactly_n_working_days_after_trigger_up_to_result(start: date, n: int) -> None:
    result = dl.add_working_days(start, n, CAL)

    assert working_days_in(start, result) == n
    assert working_days_in(start, result - timedelta(days=1)) == n - 1


@given(days, working_day_counts)
def test_working_days_before_inverts_add_working_days_when_on_working_day(d: date, n: int) -> None:
    earlier = dl.working_days_before(d, n, CAL)

    assert CAL.is_working_day(earlier)
    assert working_days_in(earlier, d - timedelta(days=1)) == n - 1
    if CAL.is_working_day(d):
        assert dl.add_working_days(earlier, n, CAL) == d


# --- months --------------------------------------------------------------------------------------


@given(days, days, month_counts)
def test_add_months_is_monotonic_in_start_date(a: date, b: date, n: int) -> None:
    earlier, later = sorted((a, b))

    assert dl.add_months(earlier, n) <= dl.add_months(later, n)


@given(days, month_counts)
def test_add_months_keeps_day_or_clamps_to_month_end_never_overflowing(start: date, n: int) -> None:
    result = dl.add_months(start, n)

    months = start.year * 12 + start.month - 1 + n
    assert (result.year, result.month) == (months // 12, months % 12 + 1)
    month_length = stdlib_calendar.monthrange(result.year, result.month)[1]
    assert result.day == min(start.day, month_length)


# --- HESC rule 12 -----------------------------------------------------------------------------


@given(days)
def test_appeal_roll_forward_gives_a_working_day_not_before_input(d: date) -> None:
    result = dl.appeal_roll_forward(d, CAL)

    assert CAL.is_working_day(result)
    assert result >= d


@given(days)
def test_appeal_roll_forward_leaves_august_and_christmas_unless_rule_12_2_lands_there(
    d: date,
) -> None:
    result = dl.appeal_roll_forward(d, CAL)

    if in_window(d):
        assert not in_window(result)
        assert result > d
    elif in_window(result):
        # Only r12(2) can land here: d was a non-working day just before the window
        # (e.g. Sun 24 Dec, Sat 31 Jul) and every day from d to the result was non-working.
        assert all(not CAL.is_working_day(d + timedelta(days=k)) for k in range((result - d).days))


@given(days)
def test_appeal_roll_forward_unchanged_only_when_ordinary_working_day(d: date) -> None:
    unchanged = dl.appeal_roll_forward(d, CAL) == d

    assert unchanged == (CAL.is_working_day(d) and not in_window(d))


@given(days, days)
def test_appeal_roll_forward_is_monotonic(a: date, b: date) -> None:
    earlier, later = sorted((a, b))

    assert dl.appeal_roll_forward(earlier, CAL) <= dl.appeal_roll_forward(later, CAL)
    # so rolling the later limb equals taking the later of the rolled limbs (order irrelevant)
    assert dl.appeal_roll_forward(max(a, b), CAL) == max(
        dl.appeal_roll_forward(a, CAL), dl.appeal_roll_forward(b, CAL)
    )


@given(days, st.integers(min_value=0, max_value=200), st.booleans())
def test_appeal_deadline_not_before_either_limb(decision: date, gap: int, has_cert: bool) -> None:
    certificate = decision + timedelta(days=gap) if has_cert else None

    appeal = dl.appeal_deadline(decision, certificate, False, CAL)

    assert appeal.appeal_deadline >= appeal.decision_plus_2_months
    limbs = [appeal.decision_plus_2_months]
    if certificate is not None:
        assert appeal.certificate_plus_1_month is not None
        assert appeal.appeal_deadline >= appeal.certificate_plus_1_month
        limbs.append(appeal.certificate_plus_1_month)
    assert appeal.later_of_unadjusted == max(limbs)
    assert CAL.is_working_day(appeal.appeal_deadline)


@given(days, st.integers(min_value=0, max_value=100), st.integers(min_value=1, max_value=60))
def test_appeal_deadline_never_earlier_when_certificate_later(
    decision: date, gap: int, delay: int
) -> None:
    sooner = dl.appeal_deadline(decision, decision + timedelta(days=gap), False, CAL)
    later = dl.appeal_deadline(decision, decision + timedelta(days=gap + delay), False, CAL)

    assert sooner.appeal_deadline <= later.appeal_deadline


# --- DL-06 notice ------------------------------------------------------------------------------


@given(days)
def test_latest_notice_safest_before_literal_both_working_days(meeting: date) -> None:
    notice = dl.latest_notice_dates(meeting, CAL)

    assert notice.safest < notice.literal < meeting
    assert CAL.is_working_day(notice.safest)
    assert CAL.is_working_day(notice.literal)
    # "clear" days lie strictly between the notice and the meeting
    assert working_days_in(notice.safest, meeting - timedelta(days=1)) == 5
    assert working_days_in(notice.literal, meeting - timedelta(days=1)) == 4


# --- the calculator ----------------------------------------------------------------------------

offsets = st.integers(min_value=0, max_value=120)


@st.composite
def valid_requests(draw: st.DrawFn) -> TimescalesRequest:
    """Requests with any mix of trigger dates, in an order the validators accept."""

    def maybe(value: date | None) -> date | None:
        return value if value is not None and draw(st.booleans()) else None

    def on_or_after(earlier: date | None) -> date:
        return draw(days) if earlier is None else earlier + timedelta(days=draw(offsets))

    decision = maybe(draw(days))
    la_received = maybe(draw(days))
    la_informed = maybe(draw(days))
    fields = {
        "decision_letter_date": decision,
        "certificate_issue_date": maybe(decision and on_or_after(decision)),
        "parent_informed_adviser_no_mediation_date": maybe(on_or_after(decision)),
        "mediation_agreement_date": maybe(on_or_after(decision)),
        "la_received_mediation_issues_date": la_received,
        "icb_received_notification_date": maybe(on_or_after(la_received)),
        "la_informed_wants_mediation_date": la_informed,
        "la_notified_adviser_unable_date": maybe(on_or_after(la_informed)),
        "referral_received_date": maybe(draw(days)),
        "mediation_date": maybe(draw(days)),
        "date_of_birth": maybe(draw(st.dates(date(1990, 1, 1), date(2030, 12, 31)))),
    }
    return TimescalesRequest.model_validate(fields)


@given(valid_requests())
def test_calculator_stays_inside_calendar_of_years_needed(request: TimescalesRequest) -> None:
    first, last = years_needed(request)

    response = compute_timescales(request, england_and_wales_calendar(first, last))

    assert (response.appeal_deadline is None) == (request.decision_letter_date is None)
    assert (response.certificate_due_by is None) == (
        request.parent_informed_adviser_no_mediation_date is None
    )
    if response.appeal_deadline is not None:
        assert first <= response.appeal_deadline.year <= last
