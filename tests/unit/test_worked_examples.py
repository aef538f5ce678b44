"""RULES.md §5 worked examples W1-W15 and "Extra", and the §3.4 bank holiday lists.

Each example runs twice: through the individual rule functions of
``models.domain.deadlines`` and through ``compute_timescales`` (the ``POST /v1/timescales``
calculator), with inputs given as JSON strings as the API receives them. Expected dates are
written as RULES.md states them ("Sat 14 Mar 2026"), so the weekday RULES.md gives is
checked too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain import deadlines as dl
from models.domain.timescales import TimescalesRequest, compute_timescales, years_needed

CAL = england_and_wales_calendar(2024, 2036)

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def stated(text: str) -> date:
    """A date as RULES.md writes it, "Sat 14 Mar 2026" or "15 Feb 2027"; checks the weekday."""
    *weekday, day, month, year = text.split()
    result = date(int(year), MONTHS.index(month) + 1, int(day))
    if weekday:
        assert WEEKDAYS[result.weekday()] == weekday[0], f"RULES.md weekday wrong in {text!r}"
    return result


# --- through compute_timescales ------------------------------------------------------------
# (inputs as JSON, {output name: date as RULES.md states it, or None = must be absent})

CALCULATOR_CASES = [
    pytest.param(
        {
            "decision_letter_date": "2026-01-14",
            "parent_informed_adviser_no_mediation_date": "2026-03-02",
            "certificate_issue_date": "2026-03-05",
        },
        {
            "contact_mediation_adviser_by": "Sat 14 Mar 2026",
            "certificate_due_by": "Thu 5 Mar 2026",
            "decision_plus_2_months": "14 Mar 2026",
            "certificate_plus_1_month": "Sun 5 Apr 2026",
            "later_of_unadjusted": "Sun 5 Apr 2026",
            "appeal_deadline": "Tue 7 Apr 2026",
        },
        id="W1",
    ),
    pytest.param(
        {
            "parent_informed_adviser_no_mediation_date": "2025-12-23",
            "decision_letter_date": "2025-11-03",
            "certificate_issue_date": "2025-12-30",
        },
        {
            "certificate_due_by": "Tue 30 Dec 2025",
            "decision_plus_2_months": "Sat 3 Jan 2026",
            "certificate_plus_1_month": "Fri 30 Jan 2026",
            "later_of_unadjusted": "Fri 30 Jan 2026",
            "appeal_deadline": "Fri 30 Jan 2026",
        },
        id="W2",
    ),
    pytest.param(
        {"parent_informed_adviser_no_mediation_date": "2026-04-02"},
        {"certificate_due_by": "Thu 9 Apr 2026"},
        id="W3",
    ),
    pytest.param(
        {
            "la_received_mediation_issues_date": "2026-05-22",
            "icb_received_notification_date": "2026-05-28",
        },
        {
            "la_must_notify_icb_by": "Thu 28 May 2026",
            "mediation_must_be_arranged_by": "Sat 27 Jun 2026",
        },
        id="W4",
    ),
    pytest.param(
        {
            "la_informed_wants_mediation_date": "2026-11-27",
            "la_notified_adviser_unable_date": "2026-12-21",
            "decision_letter_date": "2026-11-10",
        },
        {
            "mediation_must_be_arranged_by": "Sun 27 Dec 2026",
            "deemed_certificate_due_by": "Thu 24 Dec 2026",
        },
        id="W5-notice",
    ),
    pytest.param(
        {
            "la_informed_wants_mediation_date": "2026-11-27",
            "decision_letter_date": "2026-11-10",
            "certificate_issue_date": "2026-12-31",
        },
        {
            "mediation_must_be_arranged_by": "Sun 27 Dec 2026",
            "deemed_certificate_due_by": "Thu 31 Dec 2026",
            "decision_plus_2_months": "Sun 10 Jan 2027",
            "certificate_plus_1_month": "Sun 31 Jan 2027",
            "later_of_unadjusted": "Sun 31 Jan 2027",
            "appeal_deadline": "Mon 1 Feb 2027",
        },
        id="W5-fallback",
    ),
    pytest.param(
        {"decision_letter_date": "2027-12-31", "certificate_issue_date": "2028-01-31"},
        {
            "decision_plus_2_months": "Tue 29 Feb 2028",
            "certificate_plus_1_month": "Tue 29 Feb 2028",
            "later_of_unadjusted": "Tue 29 Feb 2028",
            "appeal_deadline": "Tue 29 Feb 2028",
        },
        id="W6",
    ),
    pytest.param(
        {"decision_letter_date": "2028-01-15", "certificate_issue_date": "2028-02-29"},
        {
            "decision_plus_2_months": "15 Mar 2028",
            "certificate_plus_1_month": "Wed 29 Mar 2028",
            "later_of_unadjusted": "Wed 29 Mar 2028",
            "appeal_deadline": "Wed 29 Mar 2028",
        },
        id="W7",
    ),
    pytest.param(
        {"decision_letter_date": "2026-06-30", "section_i_only": True},
        {
            "decision_plus_2_months": "Sun 30 Aug 2026",
            "later_of_unadjusted": "Sun 30 Aug 2026",
            "appeal_deadline": "Tue 1 Sep 2026",
            "certificate_plus_1_month": None,
        },
        id="W8",
    ),
    pytest.param(
        {"decision_letter_date": "2027-10-01", "certificate_issue_date": "2027-11-29"},
        {
            "decision_plus_2_months": "1 Dec 2027",
            "certificate_plus_1_month": "Wed 29 Dec 2027",
            "later_of_unadjusted": "Wed 29 Dec 2027",
            "appeal_deadline": "Tue 4 Jan 2028",
        },
        id="W9",
    ),
    pytest.param(
        {"mediation_agreement_date": "2026-12-17"},
        {
            "non_appealable_action_due_by": "Thu 31 Dec 2026",
            "icb_notify_la_due_by": "Thu 24 Dec 2026",
        },
        id="W10",
    ),
    pytest.param(
        {"mediation_agreement_date": "2027-02-01"},
        {
            "amend_school_name_or_type_issue_by": "15 Feb 2027",
            "amend_plan_issue_by": "8 Mar 2027",
            "assessment_notify_parent_by": "15 Feb 2027",
            "assessment_not_necessary_notice_by": "12 Apr 2027",
            "assessment_final_plan_by": "10 May 2027",
            "make_plan_draft_by": "8 Mar 2027",
            "make_plan_final_by": "19 Apr 2027",
        },
        id="W11",
    ),
    pytest.param(
        {"referral_received_date": "2026-05-22"},
        {"referral_actioned_by": "Mon 1 Jun 2026"},
        id="W12",
    ),
    pytest.param(
        {"mediation_concluded_date": "2027-12-22"},
        {"certificate_due_by": "Wed 29 Dec 2027"},
        id="W13",
    ),
    pytest.param(
        {
            "decision_letter_date": "2026-05-01",
            "parent_informed_adviser_no_mediation_date": "2026-05-01",
            "certificate_issue_date": "2026-05-07",
        },
        {
            "certificate_due_by": "Thu 7 May 2026",
            "contact_mediation_adviser_by": "Wed 1 Jul 2026",
            "decision_plus_2_months": "Wed 1 Jul 2026",
            "certificate_plus_1_month": "7 Jun 2026",
            "later_of_unadjusted": "Wed 1 Jul 2026",
            "appeal_deadline": "Wed 1 Jul 2026",
        },
        id="W14",
    ),
    pytest.param(
        {"date_of_birth": "2010-07-15"},
        {
            "compulsory_school_age_ends": "Fri 26 Jun 2026",
            "young_person_from": "27 Jun 2026",
            "young_person_until_inclusive": "14 Jul 2035",
        },
        id="W15-dob-2010-07-15",
    ),
    pytest.param(
        {"date_of_birth": "2010-09-01"},
        {"compulsory_school_age_ends": "Fri 25 Jun 2027"},
        id="W15-dob-2010-09-01",
    ),
    pytest.param(
        {"mediation_date": "2026-01-12"},
        {
            "latest_notice_date_safest": "Fri 2 Jan 2026",
            "latest_notice_date_literal": "Mon 5 Jan 2026",
        },
        id="W15-notice",
    ),
    pytest.param(
        {"la_informed_wants_mediation_date": "2026-01-31"},
        {"mediation_must_be_arranged_by": "Mon 2 Mar 2026"},
        id="Extra",
    ),
]


@pytest.mark.parametrize(("inputs", "expected"), CALCULATOR_CASES)
def test_calculator_gives_stated_dates_when_worked_example(
    inputs: dict[str, Any], expected: dict[str, str | None]
) -> None:
    request = TimescalesRequest.model_validate(inputs)
    first, last = years_needed(request)
    calendar = england_and_wales_calendar(first, last)

    got = compute_timescales(request, calendar).model_dump(exclude_none=True)

    want = {name: None if text is None else stated(text) for name, text in expected.items()}
    assert {name: got.get(name) for name in want} == want


# --- through the individual rule functions ---------------------------------------------------


def check_w1() -> None:
    decision = stated("Wed 14 Jan 2026")
    declined = stated("Mon 2 Mar 2026")
    issued = stated("Thu 5 Mar 2026")
    assert dl.contact_mediation_adviser_by(decision) == stated("Sat 14 Mar 2026")
    assert dl.certificate_due_by(declined, CAL) == stated("Thu 5 Mar 2026")
    appeal = dl.appeal_deadline(decision, issued, False, CAL)
    assert appeal.decision_plus_2_months == stated("14 Mar 2026")
    assert appeal.certificate_plus_1_month == stated("Sun 5 Apr 2026")  # Easter Sunday
    assert appeal.later_of_unadjusted == stated("Sun 5 Apr 2026")
    assert not CAL.is_working_day(stated("Mon 6 Apr 2026"))  # Easter Monday
    assert appeal.appeal_deadline == stated("Tue 7 Apr 2026")
    assert dl.appeal_roll_forward(stated("Sun 5 Apr 2026"), CAL) == stated("Tue 7 Apr 2026")


def check_w2() -> None:
    declined = stated("Tue 23 Dec 2025")
    counted = [dl.add_working_days(declined, n, CAL) for n in (1, 2, 3)]
    assert counted == [stated("24 Dec 2025"), stated("29 Dec 2025"), stated("30 Dec 2025")]
    assert dl.certificate_due_by(declined, CAL) == stated("Tue 30 Dec 2025")
    appeal = dl.appeal_deadline(stated("3 Nov 2025"), stated("30 Dec 2025"), False, CAL)
    assert appeal.decision_plus_2_months == stated("Sat 3 Jan 2026")
    assert appeal.certificate_plus_1_month == stated("Fri 30 Jan 2026")
    assert appeal.appeal_deadline == stated("Fri 30 Jan 2026")


def check_w3() -> None:
    assert not CAL.is_working_day(stated("Fri 3 Apr 2026"))  # Good Friday
    assert not CAL.is_working_day(stated("Mon 6 Apr 2026"))  # Easter Monday
    assert dl.certificate_due_by(stated("Thu 2 Apr 2026"), CAL) == stated("Thu 9 Apr 2026")


def check_w4() -> None:
    assert not CAL.is_working_day(stated("Mon 25 May 2026"))  # spring bank holiday
    assert dl.la_must_notify_icb_by(stated("Fri 22 May 2026"), CAL) == stated("Thu 28 May 2026")
    assert dl.mediation_must_be_arranged_by(stated("Thu 28 May 2026")) == stated("Sat 27 Jun 2026")


def check_w5() -> None:
    arrange_by = dl.mediation_must_be_arranged_by(stated("Fri 27 Nov 2026"))
    assert arrange_by == stated("Sun 27 Dec 2026")
    notice = stated("Mon 21 Dec 2026")
    assert dl.deemed_certificate_due_by(notice, arrange_by, CAL) == stated("Thu 24 Dec 2026")
    assert not CAL.is_working_day(stated("Mon 28 Dec 2026"))  # Boxing Day substitute
    assert dl.deemed_certificate_due_by(None, arrange_by, CAL) == stated("Thu 31 Dec 2026")
    appeal = dl.appeal_deadline(stated("10 Nov 2026"), stated("31 Dec 2026"), False, CAL)
    assert appeal.decision_plus_2_months == stated("Sun 10 Jan 2027")
    assert appeal.certificate_plus_1_month == stated("Sun 31 Jan 2027")
    assert appeal.appeal_deadline == stated("Mon 1 Feb 2027")


def check_w6() -> None:
    assert dl.add_months(stated("Fri 31 Dec 2027"), 2) == stated("Tue 29 Feb 2028")
    assert dl.add_months(stated("Mon 31 Jan 2028"), 1) == stated("Tue 29 Feb 2028")
    appeal = dl.appeal_deadline(stated("Fri 31 Dec 2027"), stated("Mon 31 Jan 2028"), False, CAL)
    assert appeal.decision_plus_2_months == appeal.certificate_plus_1_month
    assert appeal.appeal_deadline == stated("29 Feb 2028")


def check_w7() -> None:
    assert dl.add_months(stated("Tue 29 Feb 2028"), 1) == stated("Wed 29 Mar 2028")
    appeal = dl.appeal_deadline(stated("15 Jan 2028"), stated("Tue 29 Feb 2028"), False, CAL)
    assert appeal.decision_plus_2_months == stated("15 Mar 2028")
    assert appeal.certificate_plus_1_month == stated("Wed 29 Mar 2028")
    assert appeal.appeal_deadline == stated("Wed 29 Mar 2028")


def check_w8() -> None:
    appeal = dl.appeal_deadline(stated("Tue 30 Jun 2026"), None, True, CAL)
    assert appeal.certificate_plus_1_month is None
    assert appeal.later_of_unadjusted == stated("Sun 30 Aug 2026")
    assert not CAL.is_working_day(stated("Mon 31 Aug 2026"))  # summer bank holiday
    assert appeal.appeal_deadline == stated("Tue 1 Sep 2026")


def check_w9() -> None:
    appeal = dl.appeal_deadline(stated("Fri 1 Oct 2027"), stated("Mon 29 Nov 2027"), False, CAL)
    assert appeal.later_of_unadjusted == stated("Wed 29 Dec 2027")
    assert not CAL.is_working_day(stated("Mon 3 Jan 2028"))  # New Year substitute
    assert appeal.appeal_deadline == stated("Tue 4 Jan 2028")


def check_w10() -> None:
    agreement = stated("Thu 17 Dec 2026")
    assert dl.non_appealable_action_due_by(agreement) == stated("Thu 31 Dec 2026")
    assert dl.icb_notify_la_due_by(agreement) == stated("Thu 24 Dec 2026")


def check_w11() -> None:
    agreement = stated("Mon 1 Feb 2027")
    assert dl.amend_school_name_or_type_issue_by(agreement) == stated("15 Feb 2027")
    assert dl.amend_plan_issue_by(agreement) == stated("8 Mar 2027")
    assert dl.assessment_notify_parent_by(agreement) == stated("15 Feb 2027")
    assert dl.assessment_not_necessary_notice_by(agreement) == stated("12 Apr 2027")
    assert dl.assessment_final_plan_by(agreement) == stated("10 May 2027")
    assert dl.make_plan_draft_by(agreement) == stated("8 Mar 2027")
    assert dl.make_plan_final_by(agreement) == stated("19 Apr 2027")


def check_w12() -> None:
    assert dl.referral_actioned_by(stated("Fri 22 May 2026"), CAL) == stated("Mon 1 Jun 2026")


def check_w13() -> None:
    ended = stated("Wed 22 Dec 2027")
    counted = [dl.add_working_days(ended, n, CAL) for n in (1, 2, 3)]
    assert counted == [stated("23 Dec 2027"), stated("24 Dec 2027"), stated("29 Dec 2027")]
    assert dl.certificate_due_by(ended, CAL) == stated("Wed 29 Dec 2027")


def check_w14() -> None:
    decision = stated("Fri 1 May 2026")
    assert dl.certificate_due_by(decision, CAL) == stated("Thu 7 May 2026")
    assert dl.contact_mediation_adviser_by(decision) == stated("Wed 1 Jul 2026")
    appeal = dl.appeal_deadline(decision, stated("Thu 7 May 2026"), False, CAL)
    assert appeal.certificate_plus_1_month == stated("7 Jun 2026")
    assert appeal.appeal_deadline == stated("Wed 1 Jul 2026")


def check_w15() -> None:
    july = stated("15 Jul 2010")
    assert dl.compulsory_school_age_ends(july) == stated("Fri 26 Jun 2026")
    assert dl.young_person_from(july) == stated("27 Jun 2026")
    assert dl.young_person_until_inclusive(july) == stated("14 Jul 2035")
    assert dl.compulsory_school_age_ends(stated("1 Sep 2010")) == stated("Fri 25 Jun 2027")
    notice = dl.latest_notice_dates(stated("Mon 12 Jan 2026"), CAL)
    assert notice == (stated("Fri 2 Jan 2026"), stated("Mon 5 Jan 2026"))
    assert notice.safest == stated("Fri 2 Jan 2026")
    assert notice.literal == stated("Mon 5 Jan 2026")


def check_extra() -> None:
    assert dl.mediation_must_be_arranged_by(stated("Sat 31 Jan 2026")) == stated("Mon 2 Mar 2026")


@pytest.mark.parametrize(
    "check",
    [
        pytest.param(check_w1, id="W1"),
        pytest.param(check_w2, id="W2"),
        pytest.param(check_w3, id="W3"),
        pytest.param(check_w4, id="W4"),
        pytest.param(check_w5, id="W5"),
        pytest.param(check_w6, id="W6"),
        pytest.param(check_w7, id="W7"),
        pytest.param(check_w8, id="W8"),
        pytest.param(check_w9, id="W9"),
        pytest.param(check_w10, id="W10"),
        pytest.param(check_w11, id="W11"),
        pytest.param(check_w12, id="W12"),
        pytest.param(check_w13, id="W13"),
        pytest.param(check_w14, id="W14"),
        pytest.param(check_w15, id="W15"),
        pytest.param(check_extra, id="Extra"),
    ],
)
def test_rule_functions_give_stated_dates_when_worked_example(check: Callable[[], None]) -> None:
    check()


# --- RULES.md §3.4: bank holidays relied on ---------------------------------------------------

BANK_HOLIDAYS_3_4 = {
    2025: ["1 Jan", "18 Apr", "21 Apr", "5 May", "26 May", "25 Aug", "25 Dec", "26 Dec"],
    2026: ["1 Jan", "3 Apr", "6 Apr", "4 May", "25 May", "31 Aug", "25 Dec", "28 Dec"],
    2027: ["1 Jan", "26 Mar", "29 Mar", "3 May", "31 May", "30 Aug", "27 Dec", "28 Dec"],
    2028: ["3 Jan", "14 Apr", "17 Apr", "1 May", "29 May", "28 Aug", "25 Dec", "26 Dec"],
}


@pytest.mark.parametrize(("year", "listed"), sorted(BANK_HOLIDAYS_3_4.items()))
def test_weekday_bank_holidays_match_rules_when_year_listed(year: int, listed: list[str]) -> None:
    calendar = england_and_wales_calendar(year, year)

    weekday_holidays = [d for d in calendar.dates if d.weekday() < 5]

    assert weekday_holidays == [stated(f"{day} {year}") for day in listed]
