"""The ``POST /v1/timescales`` contract: request validation, output names, compute_timescales."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain.deadlines import CalendarRangeError
from models.domain.timescales import (
    TimescalesRequest,
    TimescalesResponse,
    compute_timescales,
    years_needed,
)

CAL = england_and_wales_calendar(2013, 2036)

# API.md "Deadline calculator": these names are fixed once published.
API_INPUTS = {
    "decision_letter_date",
    "certificate_issue_date",
    "parent_informed_adviser_no_mediation_date",
    "mediation_concluded_date",
    "la_received_mediation_issues_date",
    "la_informed_wants_mediation_date",
    "icb_received_notification_date",
    "la_notified_adviser_unable_date",
    "mediation_agreement_date",
    "referral_received_date",
    "mediation_date",
    "date_of_birth",
}
DECISION_OUTPUTS = {
    "contact_mediation_adviser_by",
    "decision_plus_2_months",
    "later_of_unadjusted",
    "appeal_deadline",
}
AGREEMENT_OUTPUTS = {
    "non_appealable_action_due_by",
    "icb_notify_la_due_by",
    "continue_to_maintain_or_cease_effective",
    "amend_school_name_or_type_issue_by",
    "amend_plan_issue_by",
    "assessment_notify_parent_by",
    "assessment_not_necessary_notice_by",
    "assessment_final_plan_by",
    "make_plan_draft_by",
    "make_plan_final_by",
}
API_OUTPUTS = (
    DECISION_OUTPUTS
    | AGREEMENT_OUTPUTS
    | {
        "certificate_plus_1_month",
        "certificate_due_by",
        "la_must_notify_icb_by",
        "mediation_must_be_arranged_by",
        "deemed_certificate_due_by",
        "referral_actioned_by",
        "latest_notice_date_safest",
        "latest_notice_date_literal",
        "compulsory_school_age_ends",
        "young_person_from",
        "young_person_until_inclusive",
    }
)


def compute(**inputs: Any) -> dict[str, Any]:
    request = TimescalesRequest.model_validate(inputs)
    return compute_timescales(request, CAL).model_dump(mode="json", exclude_none=True)


def error_for(**inputs: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        TimescalesRequest.model_validate(inputs)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return dict(errors[0])


# --- the contract's names ----------------------------------------------------------------------


def test_request_has_every_api_input_name() -> None:
    extra = {"section_i_only", "school_autumn_term_starts"}  # RULES.md A15
    assert set(TimescalesRequest.model_fields) == API_INPUTS | extra


def test_response_has_every_api_output_name() -> None:
    assert set(TimescalesResponse.model_fields) == API_OUTPUTS | {"reconsider_by"}


@pytest.mark.parametrize("model", [TimescalesRequest, TimescalesResponse])
def test_every_field_is_described_when_shown_in_openapi(model: type[Any]) -> None:
    properties = model.model_json_schema()["properties"]

    assert all(schema.get("description") for schema in properties.values())


# --- validation ---------------------------------------------------------------------------------


def test_unknown_field_rejected_when_not_in_contract() -> None:
    error = error_for(decision_date="2026-01-14")

    assert error["type"] == "extra_forbidden"
    assert error["loc"] == ("decision_date",)


def test_request_rejected_when_certificate_before_decision() -> None:
    error = error_for(decision_letter_date="2026-03-05", certificate_issue_date="2026-03-04")

    assert error["loc"] == ("certificate_issue_date",)
    assert "decision_letter_date" in error["msg"]


def test_certificate_on_decision_day_accepted() -> None:
    assert compute(decision_letter_date="2026-03-05", certificate_issue_date="2026-03-05")


def test_request_rejected_when_certificate_without_decision() -> None:
    error = error_for(certificate_issue_date="2026-03-05")

    assert error["loc"] == ("certificate_issue_date",)
    assert "only with decision_letter_date" in error["msg"]


def test_request_rejected_when_both_certificate_triggers_given() -> None:
    error = error_for(
        parent_informed_adviser_no_mediation_date="2026-03-02",
        mediation_concluded_date="2026-04-02",
    )

    assert error["loc"] == ("mediation_concluded_date",)
    assert "not both" in error["msg"]


@pytest.mark.parametrize(
    "field",
    [
        "parent_informed_adviser_no_mediation_date",
        "mediation_concluded_date",
        "mediation_agreement_date",
    ],
)
def test_request_rejected_when_mediation_event_before_decision(field: str) -> None:
    error = error_for(decision_letter_date="2026-03-05", **{field: "2026-03-01"})

    assert error["loc"] == (field,)
    assert "before decision_letter_date" in error["msg"]


def test_request_rejected_when_icb_notified_before_la_received_issues() -> None:
    error = error_for(
        la_received_mediation_issues_date="2026-05-22",
        icb_received_notification_date="2026-05-21",
    )

    assert error["loc"] == ("icb_received_notification_date",)


def test_request_rejected_when_la_unable_before_it_was_asked() -> None:
    error = error_for(
        la_informed_wants_mediation_date="2026-05-22",
        la_notified_adviser_unable_date="2026-05-21",
    )

    assert error["loc"] == ("la_notified_adviser_unable_date",)


def test_request_rejected_when_section_i_only_with_certificate() -> None:
    error = error_for(
        decision_letter_date="2026-01-14",
        certificate_issue_date="2026-03-05",
        section_i_only=True,
    )

    assert error["loc"] == ("section_i_only",)
    assert "certificate_issue_date" in error["msg"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("referral_received_date", "2014-08-31"),
        ("mediation_date", "2100-01-01"),
        ("date_of_birth", "1899-12-31"),
        ("decision_letter_date", "not-a-date"),
    ],
)
def test_request_rejected_when_date_out_of_range_or_malformed(field: str, value: str) -> None:
    error = error_for(**{field: value})

    assert error["loc"] == (field,)


def test_request_is_frozen() -> None:
    request = TimescalesRequest(decision_letter_date=date(2026, 1, 14))

    with pytest.raises(ValidationError):
        request.decision_letter_date = date(2026, 1, 15)  # type: ignore[misc]


# --- names present only when their inputs are ---------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "names"),
    [
        pytest.param({}, set(), id="nothing"),
        pytest.param({"decision_letter_date": "2026-01-14"}, DECISION_OUTPUTS, id="decision"),
        pytest.param(
            {"decision_letter_date": "2026-01-14", "certificate_issue_date": "2026-03-05"},
            DECISION_OUTPUTS | {"certificate_plus_1_month"},
            id="decision+certificate",
        ),
        pytest.param(
            {"decision_letter_date": "2026-01-14", "section_i_only": True},
            DECISION_OUTPUTS - {"contact_mediation_adviser_by"},
            id="section-i-only",
        ),
        pytest.param(
            {"parent_informed_adviser_no_mediation_date": "2026-03-02"},
            {"certificate_due_by"},
            id="declined",
        ),
        pytest.param(
            {"mediation_concluded_date": "2026-03-02"}, {"certificate_due_by"}, id="concluded"
        ),
        pytest.param(
            {"la_received_mediation_issues_date": "2026-05-22"},
            {"la_must_notify_icb_by"},
            id="la-received-issues",
        ),
        pytest.param(
            {"la_informed_wants_mediation_date": "2026-01-31"},
            {"mediation_must_be_arranged_by", "deemed_certificate_due_by"},
            id="la-informed",
        ),
        pytest.param(
            {"icb_received_notification_date": "2026-05-28"},
            {"mediation_must_be_arranged_by"},
            id="icb-health-only",
        ),
        pytest.param(
            {"la_notified_adviser_unable_date": "2026-12-21"},
            {"deemed_certificate_due_by"},
            id="la-unable",
        ),
        pytest.param(
            {"mediation_agreement_date": "2027-02-01"},
            AGREEMENT_OUTPUTS | {"reconsider_by"},
            id="agreement",
        ),
        pytest.param(
            {"referral_received_date": "2026-05-22"}, {"referral_actioned_by"}, id="referral"
        ),
        pytest.param(
            {"mediation_date": "2026-01-12"},
            {"latest_notice_date_safest", "latest_notice_date_literal"},
            id="meeting",
        ),
        pytest.param(
            {"date_of_birth": "2010-07-15"},
            {"compulsory_school_age_ends", "young_person_from", "young_person_until_inclusive"},
            id="date-of-birth",
        ),
    ],
)
def test_names_present_only_when_their_inputs_are(inputs: dict[str, Any], names: set[str]) -> None:
    assert set(compute(**inputs)) == names


def test_response_dates_serialise_as_iso_strings() -> None:
    assert compute(referral_received_date="2026-05-22") == {"referral_actioned_by": "2026-06-01"}


def test_la_date_wins_when_both_mediation_requests_given() -> None:
    got = compute(
        la_informed_wants_mediation_date="2026-01-31",
        la_received_mediation_issues_date="2026-02-02",
        icb_received_notification_date="2026-02-05",
    )

    assert got["mediation_must_be_arranged_by"] == "2026-03-02"
    assert got["deemed_certificate_due_by"] == "2026-03-05"


def test_deemed_certificate_from_notice_when_notice_before_arrange_by() -> None:
    got = compute(
        la_informed_wants_mediation_date="2026-11-27",
        la_notified_adviser_unable_date="2026-12-21",
    )

    assert got["deemed_certificate_due_by"] == "2026-12-24"


def test_deemed_certificate_from_fallback_when_notice_after_arrange_by() -> None:
    got = compute(
        la_informed_wants_mediation_date="2026-11-27",
        la_notified_adviser_unable_date="2027-01-05",
    )

    assert got["deemed_certificate_due_by"] == "2026-12-31"


# --- years_needed -------------------------------------------------------------------------------


def test_years_needed_spans_one_year_either_side_of_trigger_dates() -> None:
    request = TimescalesRequest(
        mediation_date=date(2026, 1, 12),
        decision_letter_date=date(2027, 11, 3),
        date_of_birth=date(2010, 7, 15),
    )

    assert years_needed(request) == (2025, 2028)


def test_years_needed_gives_a_small_range_when_no_trigger_dates() -> None:
    first, last = years_needed(TimescalesRequest(date_of_birth=date(2010, 7, 15)))

    assert first == last


def test_compute_raises_when_calendar_does_not_cover_the_request() -> None:
    request = TimescalesRequest(mediation_date=date(2026, 1, 5))
    calendar = england_and_wales_calendar(2026, 2026)

    with pytest.raises(CalendarRangeError):
        compute_timescales(request, calendar)


def test_compute_succeeds_when_calendar_covers_years_needed() -> None:
    request = TimescalesRequest(
        mediation_date=date(2026, 1, 5),
        decision_letter_date=date(2027, 10, 31),
        certificate_issue_date=date(2027, 11, 30),
    )
    first, last = years_needed(request)

    got = compute_timescales(request, england_and_wales_calendar(first, last))

    assert got.latest_notice_date_safest == date(2025, 12, 23)
    assert got.latest_notice_date_literal == date(2025, 12, 24)
    assert got.appeal_deadline == date(2028, 1, 4)


# --- A15: the school's autumn-term start --------------------------------------------------------


def test_school_autumn_term_start_moves_the_end_of_compulsory_school_age() -> None:
    # RULES.md W15: DOB 1 Sep 2010; 1 Sep fallback -> Fri 25 Jun 2027; term from 2 Sep 2026
    # -> Fri 26 Jun 2026 (s8(3)(a)).
    fallback = compute_timescales(
        TimescalesRequest.model_validate({"date_of_birth": "2010-09-01"}), CAL
    )
    assert fallback.compulsory_school_age_ends == date(2027, 6, 25)
    known = compute_timescales(
        TimescalesRequest.model_validate(
            {"date_of_birth": "2010-09-01", "school_autumn_term_starts": "2026-09-02"}
        ),
        CAL,
    )
    assert known.compulsory_school_age_ends == date(2026, 6, 26)
    assert known.young_person_from == date(2026, 6, 27)


def test_school_autumn_term_start_outside_the_birthday_year_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError) as caught:
        TimescalesRequest.model_validate(
            {"date_of_birth": "2010-09-01", "school_autumn_term_starts": "2025-09-02"}
        )
    (error,) = caught.value.errors()
    assert error["ctx"]["errors"][0]["field"] == "school_autumn_term_starts"
    with pytest.raises(ValidationError):
        TimescalesRequest.model_validate({"school_autumn_term_starts": "2026-09-02"})
