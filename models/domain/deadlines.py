"""Statutory deadlines for SEND mediation and appeals: pure, deterministic date arithmetic.

Everything here follows RULES.md §3 (counting rules 3.1, deadline table 3.2, regulation 44
table 3.3) and takes every date as an argument: nothing reads the clock, the environment or
the network. Bank holidays arrive as a :class:`HolidayCalendar` value, which workflows load
through an activity so that replays see the same calendar.

Counting rules (RULES.md §3.1), in one place:

1. The trigger day is never counted; the period starts the next day.
2. Working days: the Nth working day after the trigger is the last permitted day.
3. Calendar days: trigger + N, no roll-forward.
4. Months: the corresponding date N calendar months later, or the last day of that month
   when there is no such date; no roll-forward (except rule 5).
5. Appeal deadline only (HESC rule 12): see :func:`appeal_roll_forward`.
6. Weeks: trigger + 7N days, no adjustment; "immediately" is the trigger day itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, Final, Literal, NamedTuple

from dateutil.relativedelta import relativedelta
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

ONE_DAY = timedelta(days=1)
ONE_WEEK = timedelta(weeks=1)

SATURDAY = 5
FRIDAY = 4


class DeadlineRule(StrEnum):
    """The deadline rules of RULES.md §3.2. Values are stable: they are stored; never rename."""

    CONTACT_ADVISER = "contact_adviser"
    CERT_AFTER_DECLINE = "cert_after_decline"
    LA_ARRANGE_MEDIATION = "la_arrange_mediation"
    LA_NOTIFY_ICB = "la_notify_icb"
    ICB_ARRANGE_MEDIATION = "icb_arrange_mediation"
    MEDIATION_NOTICE = "mediation_notice"
    CERT_AFTER_MEDIATION = "cert_after_mediation"
    DEEMED_CERT = "deemed_cert"
    APPEAL_DEADLINE = "appeal_deadline"
    REG42_NON_APPEALABLE = "reg42_non_appealable"
    REG42_ICB_NOTIFY_LA = "reg42_icb_notify_la"
    REG42_APPEALABLE = "reg42_appealable"
    PROVIDER_REFERRAL_ACTION = "provider_referral_action"

    @property
    def rule_id(self) -> str:
        """The id used in RULES.md, e.g. DL-01 for ``CONTACT_ADVISER``."""
        return f"DL-{list(DeadlineRule).index(self) + 1:02d}"


# ---------------------------------------------------------------------------------------
# The bank holiday calendar
# ---------------------------------------------------------------------------------------


class CalendarRangeError(ValueError):
    """A date outside the years a :class:`HolidayCalendar` covers: load a wider calendar."""


class HolidayCalendar(BaseModel):
    """England & Wales bank holidays for the years ``first_year`` to ``last_year`` inclusive.

    A frozen value, so it can travel through Temporal history as JSON. ``dates`` holds every
    bank holiday in those years, including Christmas Day, Good Friday, substitute days and
    one-off proclaimed days (RULES.md §3.1 rule 2, §3.4, A1); weekend dates in it are
    harmless. Asking about a day outside the covered years raises
    :class:`CalendarRangeError` rather than guessing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_year: int = Field(description="First calendar year the holiday list covers.")
    last_year: int = Field(description="Last calendar year the holiday list covers (inclusive).")
    dates: tuple[date, ...] = Field(
        default=(),
        description="England & Wales bank holidays in those years, sorted, without duplicates.",
    )

    _holidays: frozenset[date] = PrivateAttr(default_factory=frozenset)

    @field_validator("dates")
    @classmethod
    def _sorted_unique(cls, value: tuple[date, ...]) -> tuple[date, ...]:
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _dates_within_range(self) -> HolidayCalendar:
        if self.first_year > self.last_year:
            raise ValueError(f"first_year {self.first_year} is after last_year {self.last_year}")
        outside = [d for d in self.dates if not self.first_year <= d.year <= self.last_year]
        if outside:
            raise ValueError(
                f"dates {[d.isoformat() for d in outside]} fall outside "
                f"{self.first_year}-{self.last_year}"
            )
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._holidays = frozenset(self.dates)

    def covers(self, d: date) -> bool:
        """Whether ``d`` falls in the years this calendar covers."""
        return self.first_year <= d.year <= self.last_year

    def is_holiday(self, d: date) -> bool:
        """Whether ``d`` is an England & Wales bank holiday (whatever its weekday)."""
        self._check(d)
        return d in self._holidays

    def is_working_day(self, d: date) -> bool:
        """Not a Saturday or Sunday and not a bank holiday (RULES.md §1 "Working day", A1)."""
        self._check(d)
        return d.weekday() < SATURDAY and d not in self._holidays

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        candidate = d + ONE_DAY
        while not self.is_working_day(candidate):
            candidate += ONE_DAY
        return candidate

    def previous_working_day(self, d: date) -> date:
        """The last working day strictly before ``d``."""
        candidate = d - ONE_DAY
        while not self.is_working_day(candidate):
            candidate -= ONE_DAY
        return candidate

    def _check(self, d: date) -> None:
        if not self.covers(d):
            raise CalendarRangeError(
                f"{d.isoformat()} is outside the bank holiday calendar "
                f"({self.first_year}-{self.last_year}); load a calendar covering {d.year}"
            )


# ---------------------------------------------------------------------------------------
# Counting rules (RULES.md §3.1)
# ---------------------------------------------------------------------------------------


def _require_positive(n: int, what: str) -> None:
    if n < 1:
        raise ValueError(f"{what} must be at least 1, got {n}")


def _require_non_negative(n: int, what: str) -> None:
    if n < 0:
        raise ValueError(f"{what} must not be negative, got {n}")


def add_working_days(start: date, n: int, cal: HolidayCalendar) -> date:
    """The ``n``th working day after ``start`` (rule 2): the last day of an n-WD period.

    The trigger day is never counted, whatever day it is, so a weekend or bank holiday
    trigger makes the next working day the first counted day. ``n`` must be at least 1
    (a zero-day period has no last permitted day): ``ValueError`` otherwise.
    """
    _require_positive(n, "number of working days")
    d = start
    for _ in range(n):
        d = cal.next_working_day(d)
    return d


def working_days_before(d: date, n: int, cal: HolidayCalendar) -> date:
    """The ``n``th working day before ``d`` (``d`` itself never counts); ``n`` >= 1."""
    _require_positive(n, "number of working days")
    result = d
    for _ in range(n):
        result = cal.previous_working_day(result)
    return result


def add_calendar_days(start: date, n: int) -> date:
    """``start`` + ``n`` days (rule 3): no roll-forward, even onto a weekend or holiday."""
    _require_non_negative(n, "number of days")
    return start + timedelta(days=n)


def add_weeks(start: date, n: int) -> date:
    """``start`` + 7 x ``n`` days (rule 6): no adjustment. ``n`` = 0 is "immediately"."""
    _require_non_negative(n, "number of weeks")
    return start + n * ONE_WEEK


def add_months(start: date, n: int) -> date:
    """The corresponding date ``n`` calendar months after ``start`` (rule 4, A12).

    When the target month has no corresponding day, the period ends on that month's last
    day (31 Jan + 1 month = 28 Feb, or 29 Feb in a leap year; 29 Feb 2028 + 1 month =
    29 Mar 2028). No roll-forward.
    """
    _require_non_negative(n, "number of months")
    result: date = start + relativedelta(months=n)
    return result


def in_christmas_window(d: date) -> bool:
    """Whether ``d`` falls from 25 December to 1 January inclusive (HESC r12(3)(a))."""
    return (d.month == 12 and d.day >= 25) or (d.month == 1 and d.day == 1)


def appeal_roll_forward(d: date, cal: HolidayCalendar) -> date:
    """HESC rule 12 applied to the last day for sending a SEND appeal (rule 5).

    (a) a last day from 25 Dec to 1 Jan inclusive, or in August, moves to the first working
    day after 1 January / 31 August (r12(3)(a));
    (b) otherwise a last day that is not a working day moves to the next working day
    (r12(2));
    (c) the appeal must arrive by 17:00 on the resulting day (r12(1)).

    One pass, as the rule is written: (a) asks where the period *ends*, so a period ending
    on Sunday 24 Dec moves by (b) to the next working day, which can be 27 Dec, and a
    period ending on Saturday 31 Jul moves to Monday 2 Aug. Those are the earlier, safer
    readings. The function is monotonic, so rolling the later of two limbs equals the
    later of the two rolled limbs.
    """
    if in_christmas_window(d):
        new_year = date(d.year + 1 if d.month == 12 else d.year, 1, 1)
        return cal.next_working_day(new_year)
    if d.month == 8:
        return cal.next_working_day(date(d.year, 8, 31))
    if not cal.is_working_day(d):
        return cal.next_working_day(d)
    return d


# ---------------------------------------------------------------------------------------
# The deadline rules (RULES.md §3.2)
# ---------------------------------------------------------------------------------------


def contact_mediation_adviser_by(decision: date) -> date:
    """DL-01: the parent/YP must contact the mediation adviser within 2 calendar months.

    Counted from the date the written notice of the decision was sent (A2: the earlier of
    the letter date and the sent date, never receipt). No roll-forward. Applies only where
    a mediation certificate is required (not to a Section I-only appeal, RULES.md §2 M4).
    """
    return add_months(decision, 2)


def certificate_due_by(trigger: date, cal: HolidayCalendar) -> date:
    """DL-02 / DL-07: the certificate is due within 3 working days.

    DL-02: trigger = the day the adviser was told the family does not want mediation
    (reg 34(1)). DL-07: trigger = the day mediation concluded with issues unresolved.
    """
    return add_working_days(trigger, 3, cal)


def mediation_must_be_arranged_by(trigger: date) -> date:
    """DL-03 / DL-05: mediation must take place within 30 calendar days (A4, A5).

    DL-03: trigger = the day the LA was told the family wants mediation. DL-05: trigger =
    the day the ICB received the LA's notification (health-only issues). No roll-forward.
    """
    return add_calendar_days(trigger, 30)


def la_must_notify_icb_by(received: date, cal: HolidayCalendar) -> date:
    """DL-04: the LA must tell each ICB within 3 working days of receiving health issues."""
    return add_working_days(received, 3, cal)


class NoticeDates(NamedTuple):
    """DL-06: the latest days to give the family the mediation's date and place (A7)."""

    safest: date
    """5 clear working days: the 6th working day before the meeting."""
    literal: date
    """The 5th working day before the meeting."""


def latest_notice_dates(meeting: date, cal: HolidayCalendar) -> NoticeDates:
    """DL-06: notice at least 5 working days before the meeting, unless the family consents.

    A7: "at least 5 working days prior" read safely means 5 *clear* working days between
    the notice and the meeting, so notice by the 6th working day before; read literally,
    by the 5th. Enforce ``safest`` unless the family consents to shorter notice.
    """
    return NoticeDates(
        safest=working_days_before(meeting, 6, cal),
        literal=working_days_before(meeting, 5, cal),
    )


def deemed_certificate_due_by(
    la_notified_unable: date | None,
    arrange_by: date | None,
    cal: HolidayCalendar,
) -> date:
    """DL-08: the deemed-mediation certificate is due within 3 working days.

    The trigger is the day the LA told the adviser it cannot arrange mediation in time
    (``la_notified_unable``); failing such a notice, the fallback trigger is the DL-03 date
    (``arrange_by``, from :func:`mediation_must_be_arranged_by`). When both are known the
    *earlier* is the trigger: a notice sent after the DL-03 date comes after the fallback
    has already fired, so it cannot postpone the certificate.
    """
    triggers = [d for d in (la_notified_unable, arrange_by) if d is not None]
    if not triggers:
        raise ValueError("deemed_certificate_due_by needs la_notified_unable or arrange_by")
    return certificate_due_by(min(triggers), cal)


class AppealDeadline(BaseModel):
    """DL-09: the last day to send a SEND appeal, with the limbs it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision_plus_2_months: date = Field(description="Decision sent date + 2 calendar months.")
    certificate_plus_1_month: date | None = Field(
        default=None,
        description="Certificate issue date + 1 calendar month; none without a certificate "
        "limb (no certificate yet, or a Section I-only appeal).",
    )
    later_of_unadjusted: date = Field(description="The later limb, before HESC rule 12.")
    appeal_deadline: date = Field(
        description="The later limb after HESC rule 12 roll-forward; appeal by 17:00."
    )


def appeal_deadline(
    decision: date,
    certificate_issued: date | None,
    section_i_only: bool,
    cal: HolidayCalendar,
) -> AppealDeadline:
    """DL-09 (HESC r20(1)(c), r12): the later of decision + 2 months and certificate + 1 month.

    ``decision`` is the date written notice of the decision was sent (A2);
    ``certificate_issued`` the certificate's actual issue date, not its due date (A3),
    and with two certificates the first (A4). A Section I-only appeal needs no certificate
    (RULES.md §2 M4, A13), so it has no certificate limb and ``certificate_issued`` is
    ignored. Without a certificate the result is the deadline on the facts so far: issuing
    a certificate later can only move it later. The later limb is then rolled forward by
    :func:`appeal_roll_forward`.
    """
    two_months = add_months(decision, 2)
    one_month = (
        None if section_i_only or certificate_issued is None else add_months(certificate_issued, 1)
    )
    later = two_months if one_month is None else max(two_months, one_month)
    return AppealDeadline(
        decision_plus_2_months=two_months,
        certificate_plus_1_month=one_month,
        later_of_unadjusted=later,
        appeal_deadline=appeal_roll_forward(later, cal),
    )


#: DL-13: the provider's service level for actioning a referral, unless its registry entry
#: says otherwise (``referral_action_working_days``): the calculator, the workflow's policy
#: and a new provider's default all start from this one figure.
REFERRAL_ACTION_WORKING_DAYS: Final = 5


def referral_actioned_by(
    received: date, cal: HolidayCalendar, working_days: int = REFERRAL_ACTION_WORKING_DAYS
) -> date:
    """DL-13: Kids actions a referral within 5 working days (service level, not law), or
    within its provider's own ``working_days``."""
    return add_working_days(received, working_days, cal)


def dr_responses_due_by(contacted: date, working_days: int, cal: HolidayCalendar) -> date:
    """DR: each party says whether it will take part within ``working_days`` working days of
    being asked (the service's own clock, from settings: 10 by default)."""
    return add_working_days(contacted, working_days, cal)


# --- Regulation 42: mediation agreements (DL-10, DL-11, DL-12) ----------------------------


def non_appealable_action_due_by(agreement: date) -> date:
    """DL-10, reg 42(3): agreed actions with no appeal right, within 2 weeks."""
    return add_weeks(agreement, 2)


def icb_notify_la_due_by(agreement: date) -> date:
    """DL-11, reg 42(4): where the LA was not a party, the ICB tells the LA within 1 week."""
    return add_weeks(agreement, 1)


# DL-12, reg 42(2): agreements on appealable matters follow the reg 44 periods (§3.3) as if
# the agreement were a Tribunal order, counted from the agreement date. Reg 42(5) (DL-12x)
# lets the parties agree a different timescale in writing; that date is used as given.


def continue_to_maintain_or_cease_effective(agreement: date) -> date:
    """Reg 44(2)(a)/(g)/(h): cease (appeal dismissed) or continue to maintain: immediately."""
    return add_weeks(agreement, 0)


def assessment_notify_parent_by(agreement: date) -> date:
    """Reg 44(2)(b): notify the family the LA will (re-)assess: 2 weeks."""
    return add_weeks(agreement, 2)


def assessment_not_necessary_notice_by(agreement: date) -> date:
    """Reg 44(2)(b): after assessing, notice (with reasons) that no plan is needed: 10 weeks."""
    return add_weeks(agreement, 10)


def assessment_final_plan_by(agreement: date) -> date:
    """Reg 44(2)(b): after assessing, where a plan is needed, send the final plan: 14 weeks."""
    return add_weeks(agreement, 14)


def make_plan_draft_by(agreement: date) -> date:
    """Reg 44(2)(c): make and maintain a plan: draft plan within 5 weeks."""
    return add_weeks(agreement, 5)


def make_plan_final_by(agreement: date) -> date:
    """Reg 44(2)(c): make and maintain a plan: final plan within 11 weeks."""
    return add_weeks(agreement, 11)


def reconsider_by(agreement: date) -> date:
    """Reg 44(2)(d) (lettering inferred, A9): reconsider a case referred back: 2 weeks."""
    return add_weeks(agreement, 2)


def amend_plan_issue_by(agreement: date) -> date:
    """Reg 44(2)(e)/(h): amend SEN or provision (sections B/F): amended plan in 5 weeks."""
    return add_weeks(agreement, 5)


def amend_school_name_or_type_issue_by(agreement: date) -> date:
    """Reg 44(2)(f): amend the school/institution name or type (section I): 2 weeks."""
    return add_weeks(agreement, 2)


# ---------------------------------------------------------------------------------------
# The catalogue: every deadline a referral tracks, described once
# ---------------------------------------------------------------------------------------


class Deadline(BaseModel):
    """One deadline as a referral holds it (``Referral.deadlines[name]``): built from its
    catalogue entry (:meth:`DeadlineSpec.deadline`), then met, breached or waived."""

    model_config = ConfigDict(frozen=True)

    rule: str = Field(description="RULES.md id, e.g. DL-03.")
    due_on: date
    description: str
    responsible: str
    met_on: date | None = None
    breached: bool = False
    waived: bool = Field(default=False, description="No longer applies (e.g. case withdrawn).")

    @property
    def open(self) -> bool:
        return self.met_on is None and not self.breached and not self.waived


# The names a referral keeps its deadlines under (``Referral.deadlines``): stored in workflow
# histories, the read model and the API's answers, so never rename one. Two rules may share a
# name when they are the same deadline reached two ways (DL-02/DL-07, DL-03/DL-05, DL-08).
REFERRAL_ACTIONED_BY: Final = "referral_actioned_by"
CONTACT_ADVISER_BY: Final = "contact_mediation_adviser_by"
CERTIFICATE_DUE_BY: Final = "certificate_due_by"
MEDIATION_ARRANGED_BY: Final = "mediation_must_be_arranged_by"
ICB_NOTIFIED_BY: Final = "la_must_notify_icb_by"
NOTICE_BY: Final = "latest_notice_date_safest"
DEEMED_CERTIFICATE_DUE_BY: Final = "deemed_certificate_due_by"
APPEAL_BY: Final = "appeal_deadline"
PARTY_RESPONSES_DUE_BY: Final = "party_responses_due_by"

PARENT: Final = "parent or young person"
PROVIDER: Final = "mediation provider"
COUNCIL: Final = "local authority"
DR_CONSENT_RULE: Final = "DR-CONSENT"


@dataclass(frozen=True)
class DeadlineSpec:
    """One deadline of the catalogue: the name a referral keeps it under, its RULES.md id,
    what it is (as the API shows it), who must meet it, the function that computes its day,
    and the step that sets it."""

    name: str
    rule: str
    description: str
    responsible: str
    due: Callable[..., Any]
    set_by: str

    def __post_init__(self) -> None:
        known = {r.rule_id for r in DeadlineRule} | {DR_CONSENT_RULE}
        if self.rule not in known:
            raise ValueError(f"{self.rule} is not a rule of RULES.md §3.2")

    def deadline(self, due_on: date, **state: Any) -> Deadline:
        """This deadline due on ``due_on`` (``state``: ``met_on``, ``breached``, ``waived``)."""
        return Deadline(
            rule=self.rule,
            due_on=due_on,
            description=self.description,
            responsible=self.responsible,
            **state,
        )


# One line each: a grep for a rule id in double quotes lands on its deadline, and only there.
# fmt: off
CONTACT_ADVISER = DeadlineSpec(CONTACT_ADVISER_BY, "DL-01", "Family contacts the mediation adviser (2 months from the decision)", PARENT, contact_mediation_adviser_by, "intake (mediation, where a certificate is needed)")  # noqa: E501
CERT_AFTER_DECLINE = DeadlineSpec(CERTIFICATE_DUE_BY, "DL-02", "Certificate after the family declines mediation", PROVIDER, certificate_due_by, "decline_mediation")  # noqa: E501
LA_ARRANGE_MEDIATION = DeadlineSpec(MEDIATION_ARRANGED_BY, "DL-03", "Mediation held within 30 days of the LA being told", COUNCIL, mediation_must_be_arranged_by, "request_mediation")  # noqa: E501
LA_NOTIFY_ICB = DeadlineSpec(ICB_NOTIFIED_BY, "DL-04", "ICB told of the mediation issues and the health provision sought", COUNCIL, la_must_notify_icb_by, "request_mediation (health care in issue)")  # noqa: E501
ICB_ARRANGE_MEDIATION = DeadlineSpec(MEDIATION_ARRANGED_BY, "DL-05", "Mediation held within 30 days (ICB arranges: health only)", "ICB", mediation_must_be_arranged_by, "request_mediation (health only)")  # noqa: E501
MEDIATION_NOTICE = DeadlineSpec(NOTICE_BY, "DL-06", "Family told the meeting's date and place (5 clear working days)", PROVIDER, latest_notice_dates, "book_meeting")  # noqa: E501
CERT_AFTER_MEDIATION = DeadlineSpec(CERTIFICATE_DUE_BY, "DL-07", "Certificate within 3 working days of the mediation", PROVIDER, certificate_due_by, "record_meeting")  # noqa: E501
DEEMED_CERT = DeadlineSpec(DEEMED_CERTIFICATE_DUE_BY, "DL-08", "Deemed certificate if no mediation is held within 30 days", PROVIDER, deemed_certificate_due_by, "request_mediation (the DL-03 date as fallback trigger)")  # noqa: E501
DEEMED_CERT_LA_UNABLE = DeadlineSpec(DEEMED_CERTIFICATE_DUE_BY, "DL-08", "Deemed-mediation certificate (LA cannot arrange in 30 days)", PROVIDER, deemed_certificate_due_by, "la_unable_to_arrange")  # noqa: E501
APPEAL = DeadlineSpec(APPEAL_BY, "DL-09", "Last day to appeal to the SEND Tribunal (by 17:00)", PARENT, appeal_deadline, "a certificate issued (shown, never breached)")  # noqa: E501
PROVIDER_REFERRAL_ACTION = DeadlineSpec(REFERRAL_ACTIONED_BY, "DL-13", "Provider actions the referral (service level)", PROVIDER, referral_actioned_by, "intake")  # noqa: E501
DR_CONSENT = DeadlineSpec(PARTY_RESPONSES_DUE_BY, DR_CONSENT_RULE, "Each party says whether it will take part (silence = not taking part)", "other parties", dr_responses_due_by, "intake (disagreement resolution)")  # noqa: E501
# fmt: on

#: Every deadline a referral can hold, in RULES.md order.
DEADLINES: Final[tuple[DeadlineSpec, ...]] = (
    CONTACT_ADVISER,
    CERT_AFTER_DECLINE,
    LA_ARRANGE_MEDIATION,
    LA_NOTIFY_ICB,
    ICB_ARRANGE_MEDIATION,
    MEDIATION_NOTICE,
    CERT_AFTER_MEDIATION,
    DEEMED_CERT,
    DEEMED_CERT_LA_UNABLE,
    APPEAL,
    PROVIDER_REFERRAL_ACTION,
    DR_CONSENT,
)


# ---------------------------------------------------------------------------------------
# Age: child, young person, adult (AGE-01/02)
# ---------------------------------------------------------------------------------------

PersonStatus = Literal["child", "young_person", "adult"]


def birthday(dob: date, age: int) -> date:
    """The day a person born on ``dob`` attains ``age`` years.

    A person born on 29 February attains an age in a non-leap year on 1 March (the
    reading RULES.md adopts; some read it as 28 February instead).
    """
    _require_non_negative(age, "age")
    year = dob.year + age
    try:
        return dob.replace(year=year)
    except ValueError:  # 29 February in a non-leap year
        return date(year, 3, 1)


def last_friday_in_june(year: int) -> date:
    """The school leaving date for ``year`` (Education (School Leaving Date) Order 1997)."""
    june_30 = date(year, 6, 30)
    return june_30 - timedelta(days=(june_30.weekday() - FRIDAY) % 7)


def compulsory_school_age_ends(dob: date, *, autumn_term_starts: date | None = None) -> date:
    """AGE-01: the last day of compulsory school age (the person is a child to its end).

    RULES.md: the last Friday in June of the school year (1 Sep-31 Aug) in which the child
    turns 16. That is Education Act 1996 s8(3) with the school year taken to begin on
    1 September. The Act's "school year" (s579(1)) begins with the first school term to
    begin after July, so for a 16th birthday falling from 1 September up to the day before
    the autumn term starts, s8(3)(a) ends compulsory school age in the June *before* the
    birthday. Pass that term's first day as ``autumn_term_starts`` (in the calendar year of
    the 16th birthday) to apply it; without it, 1 September is used as RULES.md does.
    A 29 February birth turns 16 on 1 March in a non-leap year (:func:`birthday`); either
    reading of that day falls in the same school year.
    """
    sixteenth = birthday(dob, 16)
    leaving = last_friday_in_june(sixteenth.year)
    school_year_starts = date(sixteenth.year, 9, 1)
    if autumn_term_starts is not None:
        if not leaving < autumn_term_starts <= date(sixteenth.year, 12, 31):
            raise ValueError(
                f"autumn_term_starts must fall after {leaving.isoformat()} in "
                f"{sixteenth.year}, the year of the 16th birthday"
            )
        school_year_starts = autumn_term_starts
    if sixteenth <= leaving or sixteenth < school_year_starts:
        return leaving  # s8(3)(b)/(c), or (a): 16 in the summer before the next school year
    return last_friday_in_june(sixteenth.year + 1)


def young_person_from(dob: date, *, autumn_term_starts: date | None = None) -> date:
    """AGE-01: the first day as a young person, the day after compulsory school age ends."""
    return compulsory_school_age_ends(dob, autumn_term_starts=autumn_term_starts) + ONE_DAY


def young_person_until_inclusive(dob: date) -> date:
    """AGE-02: the last day as a young person, the day before the 25th birthday (CFA s83(2)).

    For a 29 February birth whose 25th birthday falls in a non-leap year, the birthday is
    taken as 1 March (:func:`birthday`), so the last day as a young person is 28 February.
    (An EHC plan may still be maintained to the end of that academic year, CFA s46;
    that is a separate question.)
    """
    return birthday(dob, 25) - ONE_DAY


def person_status(dob: date, on: date, *, autumn_term_starts: date | None = None) -> PersonStatus:
    """Whether, on the day ``on``, the person is a child, a young person or an adult.

    Child: not over compulsory school age (CFA s83(2)), so the parent acts. Young person:
    over compulsory school age and under 25; acts in their own name. ``ValueError`` if
    ``on`` is before ``dob``.
    """
    if on < dob:
        raise ValueError(f"{on.isoformat()} is before the date of birth {dob.isoformat()}")
    if on <= compulsory_school_age_ends(dob, autumn_term_starts=autumn_term_starts):
        return "child"
    if on <= young_person_until_inclusive(dob):
        return "young_person"
    return "adult"


def is_young_person(dob: date, on: date, *, autumn_term_starts: date | None = None) -> bool:
    """Whether the person is a young person (CFA s83(2)) on the day ``on``."""
    return person_status(dob, on, autumn_term_starts=autumn_term_starts) == "young_person"
