"""The deadline calculator behind ``POST /v1/timescales`` (API.md "Deadline calculator").

Input and output names are fixed by API.md. Each output is present only when its inputs
are: :class:`TimescalesResponse` leaves the rest ``None`` and the API serialises with
``exclude_none``. Counting rules and sources: RULES.md §3 and :mod:`models.domain.deadlines`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from models.domain import deadlines as dl
from models.domain.base import IsoDate, refuse
from models.domain.deadlines import HolidayCalendar

EARLIEST_TRIGGER = date(2014, 9, 1)
"""Children and Families Act 2014 Part 3 and the SEND Regulations 2014 took effect."""
LATEST_DATE = date(2099, 12, 31)
"""The bank holiday tables this service loads stop at 2100 (``years_needed`` adds a year)."""

TriggerDate = Annotated[IsoDate, Field(ge=EARLIEST_TRIGGER, le=LATEST_DATE)]
BirthDate = Annotated[IsoDate, Field(ge=date(1900, 1, 1), le=LATEST_DATE)]

_RANGE = " Between 2014-09-01 and 2099-12-31."


class TimescalesRequest(BaseModel):
    """Trigger dates (Europe/London calendar dates); give any of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision_letter_date: TriggerDate | None = Field(
        default=None,
        description="Date the written notice of the LA's decision was sent (A2: use the "
        "earlier of the letter date and the sent date, never the date received). Gives the "
        "adviser-contact deadline (DL-01) and the appeal deadline (DL-09)." + _RANGE,
    )
    certificate_issue_date: TriggerDate | None = Field(
        default=None,
        description="Date the mediation certificate was actually issued (A3; the first, if "
        "there were two, A4). Adds the certificate + 1 month limb to the appeal deadline "
        "(DL-09). Needs decision_letter_date, and must not be before it; not allowed with "
        "section_i_only." + _RANGE,
    )
    parent_informed_adviser_no_mediation_date: TriggerDate | None = Field(
        default=None,
        description="Date the mediation adviser was told the family does not want mediation. "
        "Gives certificate_due_by (DL-02, 3 working days). Give this or "
        "mediation_concluded_date, not both." + _RANGE,
    )
    mediation_concluded_date: TriggerDate | None = Field(
        default=None,
        description="Date mediation concluded with issues unresolved. Gives "
        "certificate_due_by (DL-07, 3 working days). Give this or "
        "parent_informed_adviser_no_mediation_date, not both." + _RANGE,
    )
    la_received_mediation_issues_date: TriggerDate | None = Field(
        default=None,
        description="Date the LA received mediation issues that are or include health care "
        "provision. Gives la_must_notify_icb_by (DL-04, 3 working days)." + _RANGE,
    )
    la_informed_wants_mediation_date: TriggerDate | None = Field(
        default=None,
        description="Date the LA (or the adviser for it) was told the family wants mediation. "
        "Gives mediation_must_be_arranged_by (DL-03, 30 calendar days) and, by the fallback "
        "rule, deemed_certificate_due_by (DL-08). Takes precedence over "
        "icb_received_notification_date for mediation_must_be_arranged_by." + _RANGE,
    )
    icb_received_notification_date: TriggerDate | None = Field(
        default=None,
        description="Date the ICB received the LA's notification of health-only issues. "
        "Gives mediation_must_be_arranged_by (DL-05, 30 calendar days) when "
        "la_informed_wants_mediation_date is absent. Health-only mediation needs no "
        "certificate, so this gives no deemed_certificate_due_by." + _RANGE,
    )
    la_notified_adviser_unable_date: TriggerDate | None = Field(
        default=None,
        description="Date the LA told the adviser it cannot arrange mediation within 30 days. "
        "Gives deemed_certificate_due_by (DL-08, 3 working days); if it is after the DL-03 "
        "date the fallback trigger (the DL-03 date) applies instead." + _RANGE,
    )
    mediation_agreement_date: TriggerDate | None = Field(
        default=None,
        description="Date of the written mediation agreement. Gives the regulation 42 "
        "deadlines (DL-10 2 weeks, DL-11 1 week) and the regulation 44 periods that "
        "regulation 42(2) applies to appealable matters (DL-12)." + _RANGE,
    )
    referral_received_date: TriggerDate | None = Field(
        default=None,
        description="Date Kids received the referral. Gives referral_actioned_by (DL-13, "
        "5 working days; a service level, not law)." + _RANGE,
    )
    mediation_date: TriggerDate | None = Field(
        default=None,
        description="Date of the mediation meeting. Gives the latest days to send the family "
        "its date and place (DL-06; safest = 5 clear working days before, literal = 5th "
        "working day before, A7)." + _RANGE,
    )
    date_of_birth: BirthDate | None = Field(
        default=None,
        description="Child's or young person's date of birth. Gives the end of compulsory "
        "school age and the young-person period (AGE-01/02). Between 1900-01-01 and "
        "2099-12-31.",
    )
    school_autumn_term_starts: TriggerDate | None = Field(
        default=None,
        description="With date_of_birth: the first day of the autumn term at the child's "
        "school in the year they turn 16 (RULES.md A15). A 16th birthday from 1 September up "
        "to the day before that term starts ends compulsory school age in the June before the "
        "birthday (EA 1996 s8(3)(a)); without it 1 September is assumed." + _RANGE,
    )
    section_i_only: StrictBool = Field(
        default=False,
        description="True when the appeal is about Section I (school or institution named, "
        "or none named) only: no mediation certificate is needed (RULES.md §2 M4, A13), so "
        "the appeal deadline has no certificate limb and there is no adviser-contact "
        "deadline (DL-01).",
    )

    @field_validator("certificate_issue_date")
    @classmethod
    def _certificate_after_decision(cls, value: date | None, info: ValidationInfo) -> date | None:
        if value is None or "decision_letter_date" not in info.data:
            return value  # absent, or decision_letter_date already reported invalid
        decision: date | None = info.data["decision_letter_date"]
        if decision is None:
            raise ValueError(
                "certificate_issue_date is allowed only with decision_letter_date: the "
                "appeal deadline is the later of decision + 2 months and certificate + 1 month"
            )
        _not_before(value, "certificate_issue_date", decision, "decision_letter_date")
        return value

    @field_validator("parent_informed_adviser_no_mediation_date")
    @classmethod
    def _decline_after_decision(cls, value: date | None, info: ValidationInfo) -> date | None:
        _not_before_field(value, "parent_informed_adviser_no_mediation_date", info)
        return value

    @field_validator("mediation_concluded_date")
    @classmethod
    def _one_certificate_trigger(cls, value: date | None, info: ValidationInfo) -> date | None:
        if value is None:
            return value
        if info.data.get("parent_informed_adviser_no_mediation_date") is not None:
            raise ValueError(
                "give either parent_informed_adviser_no_mediation_date (DL-02) or "
                "mediation_concluded_date (DL-07), not both: each is the trigger of "
                f"{dl.CERTIFICATE_DUE_BY}"
            )
        _not_before_field(value, "mediation_concluded_date", info)
        return value

    @field_validator("icb_received_notification_date")
    @classmethod
    def _icb_after_la(cls, value: date | None, info: ValidationInfo) -> date | None:
        la_received: date | None = info.data.get("la_received_mediation_issues_date")
        if value is not None and la_received is not None:
            _not_before(
                value,
                "icb_received_notification_date",
                la_received,
                "la_received_mediation_issues_date",
            )
        return value

    @field_validator("la_notified_adviser_unable_date")
    @classmethod
    def _unable_after_request(cls, value: date | None, info: ValidationInfo) -> date | None:
        informed: date | None = info.data.get("la_informed_wants_mediation_date")
        if value is not None and informed is not None:
            _not_before(
                value,
                "la_notified_adviser_unable_date",
                informed,
                "la_informed_wants_mediation_date",
            )
        return value

    @field_validator("mediation_agreement_date")
    @classmethod
    def _agreement_after_decision(cls, value: date | None, info: ValidationInfo) -> date | None:
        _not_before_field(value, "mediation_agreement_date", info)
        return value

    @model_validator(mode="after")
    def _term_start_fits_the_birthday(self) -> TimescalesRequest:
        term = self.school_autumn_term_starts
        if term is None:
            return self
        if self.date_of_birth is None:
            refuse([("school_autumn_term_starts", "give it with date_of_birth")])
            return self
        try:
            dl.compulsory_school_age_ends(self.date_of_birth, autumn_term_starts=term)
        except ValueError as exc:
            refuse([("school_autumn_term_starts", str(exc))])
        return self

    @field_validator("section_i_only")
    @classmethod
    def _no_certificate_for_section_i(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("certificate_issue_date") is not None:
            raise ValueError(
                "section_i_only cannot be combined with certificate_issue_date: a Section "
                "I-only appeal needs no certificate (RULES.md §2 M4), so a certificate cannot "
                "extend its deadline; leave certificate_issue_date out, or set section_i_only "
                "to false if the appeal is also about sections B or F"
            )
        return value


def _not_before(value: date, name: str, earlier: date, earlier_name: str) -> None:
    if value < earlier:
        raise ValueError(
            f"{name} ({value.isoformat()}) is before {earlier_name} ({earlier.isoformat()})"
        )


def _not_before_field(value: date | None, name: str, info: ValidationInfo) -> None:
    decision: date | None = info.data.get("decision_letter_date")
    if value is not None and decision is not None:
        _not_before(value, name, decision, "decision_letter_date")


class TimescalesResponse(BaseModel):
    """Every deadline the given trigger dates determine (ISO dates, Europe/London)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contact_mediation_adviser_by: date | None = Field(
        default=None,
        description=(
            "DL-01: last day for the family to contact the mediation adviser (decision + 2 "
            "calendar months, no roll-forward). Absent for a Section I-only appeal."
        ),
    )
    decision_plus_2_months: date | None = Field(
        default=None,
        description=(
            "DL-09 limb: decision + 2 calendar months (corresponding date, clamped to the month's"
            " end)."
        ),
    )
    certificate_plus_1_month: date | None = Field(
        default=None,
        description=(
            "DL-09 limb: certificate issue date + 1 calendar month. Absent for a Section I-only "
            "appeal."
        ),
    )
    later_of_unadjusted: date | None = Field(
        default=None,
        description="DL-09: the later limb, before the HESC rule 12 roll-forward.",
    )
    appeal_deadline: date | None = Field(
        default=None,
        description=(
            "DL-09: last day to send the appeal (by 17:00): the later limb rolled forward by HESC"
            " rule 12 (25 Dec-1 Jan or August: first working day after 1 Jan / 31 Aug; otherwise "
            "a non-working day moves to the next working day). Without a certificate this is the "
            "deadline on the facts given; a later certificate can extend it."
        ),
    )
    certificate_due_by: date | None = Field(
        default=None,
        description=(
            "DL-02 / DL-07: mediation certificate due (3 working days after the family declined "
            "mediation, or after mediation concluded)."
        ),
    )
    la_must_notify_icb_by: date | None = Field(
        default=None,
        description="DL-04: LA must send the health issues to each ICB (3 working days).",
    )
    mediation_must_be_arranged_by: date | None = Field(
        default=None,
        description=(
            "DL-03 / DL-05: mediation must take place by this day (30 calendar days, no roll-"
            "forward)."
        ),
    )
    deemed_certificate_due_by: date | None = Field(
        default=None,
        description=(
            "DL-08: deemed-mediation certificate due (3 working days after the LA's notice that "
            "it cannot arrange mediation, or after the DL-03 date, whichever is earlier)."
        ),
    )
    non_appealable_action_due_by: date | None = Field(
        default=None,
        description="DL-10, reg 42(3): agreed actions with no appeal right (2 weeks).",
    )
    icb_notify_la_due_by: date | None = Field(
        default=None,
        description=(
            "DL-11, reg 42(4): the ICB tells the LA of the agreement where the LA was not a party"
            " (1 week)."
        ),
    )
    continue_to_maintain_or_cease_effective: date | None = Field(
        default=None,
        description=(
            "Reg 44(2)(a)/(g)/(h) via reg 42(2): continue to maintain, or cease, the plan "
            "(immediately)."
        ),
    )
    amend_school_name_or_type_issue_by: date | None = Field(
        default=None,
        description=(
            "Reg 44(2)(f) via reg 42(2): amended plan naming the school or type, section I (2 "
            "weeks)."
        ),
    )
    amend_plan_issue_by: date | None = Field(
        default=None,
        description="Reg 44(2)(e)/(h) via reg 42(2): amended plan for sections B/F (5 weeks).",
    )
    assessment_notify_parent_by: date | None = Field(
        default=None,
        description=(
            "Reg 44(2)(b) via reg 42(2): tell the family the LA will (re-)assess (2 weeks)."
        ),
    )
    assessment_not_necessary_notice_by: date | None = Field(
        default=None,
        description=(
            "Reg 44(2)(b) via reg 42(2): notice with reasons that no plan is needed (10 weeks)."
        ),
    )
    assessment_final_plan_by: date | None = Field(
        default=None,
        description=(
            "Reg 44(2)(b) via reg 42(2): final plan where the assessment shows one is needed (14 "
            "weeks)."
        ),
    )
    make_plan_draft_by: date | None = Field(
        default=None,
        description="Reg 44(2)(c) via reg 42(2): draft plan (5 weeks).",
    )
    make_plan_final_by: date | None = Field(
        default=None,
        description="Reg 44(2)(c) via reg 42(2): final plan (11 weeks).",
    )
    reconsider_by: date | None = Field(
        default=None,
        description=(
            "Reg 44(2)(d) via reg 42(2) (lettering inferred, A9): reconsider a case referred back"
            " (2 weeks)."
        ),
    )
    referral_actioned_by: date | None = Field(
        default=None,
        description=(
            "DL-13: Kids actions the referral (5 working days; a service level, not law)."
        ),
    )
    latest_notice_date_safest: date | None = Field(
        default=None,
        description=(
            "DL-06 (A7): last day to send the meeting's date and place with 5 clear working days'"
            " notice (the 6th working day before). Enforced unless the family consents to less."
        ),
    )
    latest_notice_date_literal: date | None = Field(
        default=None,
        description="DL-06 (A7): the literal reading, the 5th working day before the meeting.",
    )
    compulsory_school_age_ends: date | None = Field(
        default=None,
        description=(
            "AGE-01: last day of compulsory school age (the last Friday in June of the school "
            "year in which the child turns 16; the school year starts with the autumn term "
            "given as school_autumn_term_starts, else on 1 September, A15)."
        ),
    )
    young_person_from: date | None = Field(
        default=None,
        description="AGE-01: first day as a young person (acts in their own name).",
    )
    young_person_until_inclusive: date | None = Field(
        default=None,
        description=(
            "AGE-02: last day as a young person (the day before the 25th birthday; for a 29 "
            "February birth in a non-leap year, 28 February)."
        ),
    )


def compute_timescales(req: TimescalesRequest, cal: HolidayCalendar) -> TimescalesResponse:
    """Every deadline ``req`` determines, counted with the bank holidays in ``cal``.

    ``cal`` must cover :func:`years_needed` ``(req)``; otherwise
    :class:`~models.domain.deadlines.CalendarRangeError`.
    """
    out: dict[str, date] = {}

    if req.decision_letter_date is not None:
        appeal = dl.appeal_deadline(
            req.decision_letter_date, req.certificate_issue_date, req.section_i_only, cal
        )
        out.update(appeal.model_dump(exclude_none=True))
        if not req.section_i_only:
            out[dl.CONTACT_ADVISER_BY] = dl.contact_mediation_adviser_by(req.decision_letter_date)

    certificate_trigger = (
        req.mediation_concluded_date or req.parent_informed_adviser_no_mediation_date
    )
    if certificate_trigger is not None:
        out[dl.CERTIFICATE_DUE_BY] = dl.certificate_due_by(certificate_trigger, cal)

    if req.la_received_mediation_issues_date is not None:
        out[dl.ICB_NOTIFIED_BY] = dl.la_must_notify_icb_by(
            req.la_received_mediation_issues_date, cal
        )

    arrange_by: date | None = None
    if req.la_informed_wants_mediation_date is not None:
        arrange_by = dl.mediation_must_be_arranged_by(req.la_informed_wants_mediation_date)
        out[dl.MEDIATION_ARRANGED_BY] = arrange_by
    elif req.icb_received_notification_date is not None:
        out[dl.MEDIATION_ARRANGED_BY] = dl.mediation_must_be_arranged_by(
            req.icb_received_notification_date
        )

    if req.la_notified_adviser_unable_date is not None or arrange_by is not None:
        out[dl.DEEMED_CERTIFICATE_DUE_BY] = dl.deemed_certificate_due_by(
            req.la_notified_adviser_unable_date, arrange_by, cal
        )

    if (agreement := req.mediation_agreement_date) is not None:
        out.update(
            non_appealable_action_due_by=dl.non_appealable_action_due_by(agreement),
            icb_notify_la_due_by=dl.icb_notify_la_due_by(agreement),
            continue_to_maintain_or_cease_effective=dl.continue_to_maintain_or_cease_effective(
                agreement
            ),
            amend_school_name_or_type_issue_by=dl.amend_school_name_or_type_issue_by(agreement),
            amend_plan_issue_by=dl.amend_plan_issue_by(agreement),
            assessment_notify_parent_by=dl.assessment_notify_parent_by(agreement),
            assessment_not_necessary_notice_by=dl.assessment_not_necessary_notice_by(agreement),
            assessment_final_plan_by=dl.assessment_final_plan_by(agreement),
            make_plan_draft_by=dl.make_plan_draft_by(agreement),
            make_plan_final_by=dl.make_plan_final_by(agreement),
            reconsider_by=dl.reconsider_by(agreement),
        )

    if req.referral_received_date is not None:
        out[dl.REFERRAL_ACTIONED_BY] = dl.referral_actioned_by(req.referral_received_date, cal)

    if req.mediation_date is not None:
        notice = dl.latest_notice_dates(req.mediation_date, cal)
        out[dl.NOTICE_BY] = notice.safest
        out["latest_notice_date_literal"] = notice.literal

    if (dob := req.date_of_birth) is not None:
        term = req.school_autumn_term_starts
        out["compulsory_school_age_ends"] = dl.compulsory_school_age_ends(
            dob, autumn_term_starts=term
        )
        out["young_person_from"] = dl.young_person_from(dob, autumn_term_starts=term)
        out["young_person_until_inclusive"] = dl.young_person_until_inclusive(dob)

    return TimescalesResponse.model_validate(out)


def years_needed(req: TimescalesRequest) -> tuple[int, int]:
    """The calendar years (first, last) a :class:`HolidayCalendar` must cover for ``req``.

    One year either side of the trigger dates is enough: DL-06 counts back at most 6
    working days, and every forward count (2 months plus the rule 12 roll, 30 days plus
    3 working days, 5 working days) ends by the next year. The date of birth needs no
    calendar. A request with no trigger dates counts no working days; it gets a one-year
    range so that callers can build a calendar unconditionally.
    """
    triggers = [value for name, value in req if isinstance(value, date) and name != "date_of_birth"]
    if not triggers:
        return EARLIEST_TRIGGER.year, EARLIEST_TRIGGER.year
    return min(triggers).year - 1, max(triggers).year + 1
