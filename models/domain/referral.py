"""What a referral is: intake, parties, meetings, certificates, agreements and its live state.

Pure pydantic models (stdlib + pydantic only). Enum values are stable lowercase strings:
they are stored in workflow histories and in the database, so never rename one.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    model_validator,
)

# The building blocks live in ``base`` (``commands`` needs them too); the names other modules
# import from here are re-exported.
from models.domain.base import ActionKind as ActionKind
from models.domain.base import Identifier as Identifier
from models.domain.base import IsoDate, StrictBool, refuse
from models.domain.base import MeetingOutcome as MeetingOutcome
from models.domain.base import ShortText as ShortText
from models.domain.base import Strict as Strict
from models.domain.base import Text as Text
from models.domain.base import VenueKind as VenueKind
from models.domain.commands import KnownFact
from models.domain.deadlines import MEDIATION_ARRANGED_BY, Deadline

#: A caller's own case reference: one line, identifier-like (it reaches email subjects).
ExternalReference = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_./:#-]{0,63}$"),
]


class Route(StrEnum):
    MEDIATION = "mediation"
    DISAGREEMENT_RESOLUTION = "disagreement_resolution"


class ReferrerRole(StrEnum):
    PARENT = "parent"
    YOUNG_PERSON = "young_person"
    ALTERNATIVE_PERSON = "alternative_person"


class DecisionType(StrEnum):
    """The EHC decision being disputed (RULES.md §2 rows M1–M11)."""

    REFUSAL_TO_ASSESS = "refusal_to_assess"
    REFUSAL_TO_REASSESS = "refusal_to_reassess"
    REFUSAL_TO_ISSUE = "refusal_to_issue"
    REFUSAL_TO_AMEND = "refusal_to_amend"
    CEASE_TO_MAINTAIN = "cease_to_maintain"
    PLAN_CONTENTS = "plan_contents"


class PlanSection(StrEnum):
    B = "B"
    C = "C"
    D = "D"
    F = "F"
    G = "G"
    H1 = "H1"
    H2 = "H2"
    I = "I"  # noqa: E741  (the EHCP's own name for the section)


APPEALABLE_SECTIONS = frozenset({PlanSection.B, PlanSection.F, PlanSection.I})
HEALTH_SECTIONS = frozenset({PlanSection.C, PlanSection.G})
SOCIAL_CARE_SECTIONS = frozenset({PlanSection.D, PlanSection.H1, PlanSection.H2})


class DisagreementType(StrEnum):
    """Disagreement Resolution (RULES.md §2 rows D1–D3; the seed's three bullets)."""

    SEN_PROVISION = "sen_provision"
    CARRYING_OUT_DUTIES = "carrying_out_duties"
    HEALTH_OR_SOCIAL_CARE = "health_or_social_care"


class ContactMethod(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    POST = "post"


class PartyKind(StrEnum):
    LOCAL_AUTHORITY = "local_authority"
    ICB = "icb"
    SCHOOL = "school"
    NURSERY = "nursery"
    COLLEGE = "college"
    HEALTH_PROFESSIONAL = "health_professional"
    SOCIAL_CARE = "social_care"
    PROFESSIONAL = "professional"
    OTHER = "other"


class Status(StrEnum):
    AWAITING_INFORMATION_SESSION = "awaiting_information_session"
    AWAITING_FAMILY_DECISION = "awaiting_family_decision"
    AWAITING_PARTY_RESPONSES = "awaiting_party_responses"
    ARRANGING_MEETING = "arranging_meeting"
    MEETING_BOOKED = "meeting_booked"
    AGREEMENT_AWAITING_SIGNATURE = "agreement_awaiting_signature"
    TRACKING_ACTIONS = "tracking_actions"
    CLOSED = "closed"
    STOPPED = "stopped"  # the workflow was terminated or failed with the case open (reconciler)


class Outcome(StrEnum):
    """Why a referral closed."""

    DECLINED_MEDIATION = "declined_mediation"
    NO_AGREEMENT = "no_agreement"
    PARTIAL_AGREEMENT = "partial_agreement"
    AGREEMENT = "agreement"
    WITHDRAWN = "withdrawn"
    PARTIES_DECLINED = "parties_declined"
    NO_MEETING = "no_meeting"
    NO_RESPONSE = "no_response"  # DR: nobody answered within the response window
    CANCELLED = "cancelled"  # an operator cancelled the case (Temporal Web UI)


class CertificateKind(StrEnum):
    DECLINED_MEDIATION = "declined_mediation"
    AFTER_MEDIATION = "after_mediation"
    DEEMED = "deemed"


class PartyAnswer(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NO_RESPONSE = "no_response"
    REQUIRED = "required"  # Mediation: the LA and ICB (intake.cannot_decline_mediation)


# --------------------------------------------------------------------------- intake


class Contact(Strict):
    name: ShortText = Field(description="Who to contact (personal data).")
    email: EmailStr | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()-]{6,20}$")] | None = None
    preferred: ContactMethod = ContactMethod.EMAIL
    postal_address: Text | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        wanted = {
            ContactMethod.EMAIL: self.email,
            ContactMethod.PHONE: self.phone,
            ContactMethod.POST: self.postal_address,
        }[self.preferred]
        if wanted is None:
            field = {"email": "email", "phone": "phone", "post": "postal_address"}
            refuse(
                [
                    (
                        field[self.preferred.value],
                        f"preferred contact is {self.preferred.value} but none was given",
                    )
                ]
            )
        return self


class Referrer(Strict):
    role: ReferrerRole = Field(
        description="parent (of a child), young_person (over compulsory school age, under 25, "
        "acting in their own name) or alternative_person (for a young person lacking capacity)."
    )
    contact: Contact
    relationship_to_child: ShortText | None = Field(
        default=None, description="e.g. mother, carer (parent or alternative person)."
    )


class Child(Strict):
    name: ShortText = Field(description="The child's or young person's name (personal data).")
    date_of_birth: IsoDate = Field(description="Used for the compulsory-school-age and 25 checks.")
    school_autumn_term_starts: IsoDate | None = Field(
        default=None,
        description="First day of the autumn term at the child's school in the year they turn "
        "16, if known (RULES.md A15): it decides when compulsory school age ends for a 16th "
        "birthday around 1 September. Unknown: 1 September is assumed, and for a 16th birthday "
        "in August or September a referral is not refused on age alone (a notice asks for it).",
    )


class Party(Strict):
    """Someone the referral is with, or who is invited (organisation, role, contact)."""

    id: Identifier | None = Field(
        default=None, description="Your id for this party; assigned (party-1…) if omitted."
    )
    kind: PartyKind
    organisation: ShortText
    role: ShortText | None = Field(default=None, description="e.g. SENCO, SEN officer.")
    contact: Contact


class Supporter(Strict):
    name: ShortText
    relationship: ShortText = Field(description="e.g. friend, family member, advocate, lawyer.")
    contact: Contact | None = None


class Decision(Strict):
    type: DecisionType
    letter_date: IsoDate = Field(description="The date on the decision letter.")
    sent_date: IsoDate | None = Field(
        default=None,
        description="When the notice was sent, if known: deadlines run from the earlier of "
        "letter and sent dates, never from receipt (RULES.md A2).",
    )
    sections: tuple[PlanSection, ...] = Field(
        default=(), description="Plan sections disputed (required for plan_contents)."
    )

    @property
    def decision_date(self) -> date:
        return min(self.letter_date, self.sent_date) if self.sent_date else self.letter_date

    @model_validator(mode="after")
    def _sections_fit_type(self) -> Decision:
        errors: list[tuple[str, str]] = []
        if self.type is DecisionType.PLAN_CONTENTS and not self.sections:
            errors.append(("sections", "list the plan sections disputed for plan_contents"))
        if len(set(self.sections)) != len(self.sections):
            errors.append(("sections", "each section once"))
        refuse(errors)
        return self


class Preferences(Strict):
    venue: VenueKind = VenueKind.REMOTE
    reasonable_adjustments: Text | None = Field(
        default=None, description="Anything the provider should arrange (personal data)."
    )
    consents_to_short_notice: StrictBool = Field(
        default=False,
        description="The family agrees to less than 5 working days' notice of a meeting (DL-06).",
    )
    interpreter_language: ShortText | None = None


class _ReferralCommon(Strict):
    received_on: IsoDate | None = Field(
        default=None,
        description="When the provider received the referral (default today, Europe/London). "
        "Never in the future.",
    )
    local_authority: Identifier = Field(description="The council's code, e.g. E10000015.")
    external_reference: ExternalReference | None = Field(
        default=None,
        description="Your own case reference (e.g. your case system's id; letters, digits and "
        "`_./:#-`, at most 64): unique per council, a list filter, and shown in every email "
        "subject and webhook to the council. Not personal data: never put a name in it.",
    )
    referrer: Referrer
    child: Child
    preferences: Preferences = Preferences()
    supporter: Supporter | None = None
    invitees: tuple[Party, ...] = Field(
        default=(),
        description="People the family suggests should attend (e.g. SENCO, class teacher).",
    )
    facts: tuple[KnownFact, ...] = Field(
        default=(),
        description="Facts already known when the referral is entered late or migrated from "
        "another system, each a command with the date it happened (`on`, required), e.g. "
        '`{"command": "party_response", "party_id": "school", "answer": "accepted", '
        '"on": "2026-11-10"}`. Applied in date order by exactly the rules of the commands '
        "(a fact not possible at that point is a 422 naming it), so the referral starts in its "
        "true state; what those facts trigger (a certificate, say) happens now. Mediation: "
        "action, information_session, decline_mediation, request_mediation, "
        "la_unable_to_arrange. Disagreement Resolution: action, party_response.",
    )

    def _fact_errors(self) -> list[tuple[str, str]]:
        return [
            (f"facts.{n}.on", "give the date it happened")
            for n, fact in enumerate(self.facts)
            if fact.on is None
        ]


class MediationReferralCreate(_ReferralCommon):
    route: Literal[Route.MEDIATION]
    decision: Decision
    health_care_in_issue: StrictBool = False
    social_care_in_issue: StrictBool = False
    health_provision_sought: Text | None = Field(
        default=None,
        description="Where the issues include missing health provision: what is sought "
        "(reg 32(e)). Required when health care provision is in issue.",
    )
    mediation_issues: tuple[Text, ...] = Field(
        default=(), description="The matters to mediate (reg 32(e))."
    )
    local_authority_contact: Party = Field(
        description="The LA's contact: the LA must attend with a decision maker."
    )
    icbs: tuple[Party, ...] = Field(
        default=(), description="Each ICB concerned (required when health care is in issue)."
    )
    linked_referral_id: Identifier | None = None

    @model_validator(mode="after")
    def _coherent(self) -> MediationReferralCreate:
        sections = set(self.decision.sections)
        errors: list[tuple[str, str]] = []
        if sections & HEALTH_SECTIONS and not self.health_care_in_issue:
            errors.append(
                (
                    "health_care_in_issue",
                    "sections C or G are disputed, so health care provision is in issue; "
                    "set health_care_in_issue to true",
                )
            )
        if sections & SOCIAL_CARE_SECTIONS and not self.social_care_in_issue:
            errors.append(
                (
                    "social_care_in_issue",
                    "sections D or H1/H2 are disputed, so social care provision is in issue; "
                    "set social_care_in_issue to true",
                )
            )
        if (self.health_care_in_issue or sections & HEALTH_SECTIONS) and not self.icbs:
            errors.append(
                (
                    "icbs",
                    "health care provision is in issue, so the ICB must be named and told "
                    "within 3 working days (DL-04)",
                )
            )
        if (self.health_care_in_issue or sections & HEALTH_SECTIONS) and not (
            self.health_provision_sought
        ):
            errors.append(
                (
                    "health_provision_sought",
                    "say what health care provision is sought (reg 32(e))",
                )
            )
        if self.local_authority_contact.kind is not PartyKind.LOCAL_AUTHORITY:
            errors.append(("local_authority_contact.kind", "must be local_authority"))
        errors += [
            (f"icbs.{n}.kind", "every ICB entry must have kind icb")
            for n, icb in enumerate(self.icbs)
            if icb.kind is not PartyKind.ICB
        ]
        refuse([*errors, *self._fact_errors()])
        return self

    @property
    def section_i_only(self) -> bool:
        return self.decision.type is DecisionType.PLAN_CONTENTS and set(self.decision.sections) == {
            PlanSection.I
        }

    @property
    def health_or_social_care_only(self) -> bool:
        """Rows M9/M10: only health and/or social care sections, nothing appealable."""
        sections = set(self.decision.sections)
        return (
            self.decision.type is DecisionType.PLAN_CONTENTS
            and bool(sections)
            and not sections & APPEALABLE_SECTIONS
        )

    @property
    def health_only(self) -> bool:
        """Row M9: the ICB arranges (DL-05), not the LA."""
        return self.health_or_social_care_only and set(self.decision.sections) <= HEALTH_SECTIONS

    @property
    def certificate_required(self) -> bool:
        """A certificate is needed to appeal (RULES.md §2): not for I-only, not for H/SC-only."""
        return not (self.section_i_only or self.health_or_social_care_only)


class DisagreementResolutionReferralCreate(_ReferralCommon):
    route: Literal[Route.DISAGREEMENT_RESOLUTION]
    disagreement_type: DisagreementType
    has_ehc_plan: StrictBool = Field(default=False, description="No EHC plan is needed for DR.")
    parties: tuple[Party, ...] = Field(
        min_length=1, description="The parties the disagreement is with; each is asked to agree."
    )
    issues: tuple[Text, ...] = Field(default=(), description="What the disagreement is about.")
    appealable_decision: DecisionType | None = Field(
        default=None,
        description="If the disagreement is really about an appealable EHC decision, say which: "
        "such a dispute belongs to Mediation and is refused here with a pointer to it.",
    )
    linked_referral_id: Identifier | None = None
    parties_contacted_on: IsoDate | None = Field(
        default=None,
        description="When the parties were asked whether they will take part, if you have "
        "already asked them. Default: the day the service contacts them, which is today, even "
        "for a referral entered late. The response window (10 working days) and the reminder "
        "count from this day, never from received_on.",
    )

    @model_validator(mode="after")
    def _coherent(self) -> DisagreementResolutionReferralCreate:
        refuse(self._fact_errors())
        return self


ReferralCreate = Annotated[
    MediationReferralCreate | DisagreementResolutionReferralCreate,
    Field(discriminator="route"),
]


# --------------------------------------------------------------------------- state


class Notice(BaseModel):
    """Something the caller must see: a flag that is never silent."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str


class Certificate(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: str
    kind: CertificateKind
    issued_on: date
    due_on: date
    on_time: bool
    appeal_deadline: date | None = Field(
        default=None, description="DL-09 computed from the first certificate."
    )
    section_i_note: str | None = None


class DocumentRef(BaseModel):
    """A document issued for the referral, and how its delivery went (no content)."""

    model_config = ConfigDict(frozen=True)

    number: str
    kind: str = Field(description="certificate, agreement or invitation")
    issued_on: date
    sha256: str
    failed: tuple[str, ...] = Field(default=(), description="Recipients it could not reach.")
    manual: tuple[str, ...] = Field(
        default=(), description="Recipients who prefer post or phone: the provider sends these."
    )


class Venue(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: VenueKind
    venue_id: str | None = None
    name: str | None = None
    address: str | None = None
    video_link: str | None = None
    accessibility: str | None = None


class MediatorSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    send_trained: bool
    accreditation: str | None = None


class MeetingStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    HELD = "held"


class MeetingReplyRecord(BaseModel):
    """An invitee's answer to a meeting invitation (the latest per invitee is kept)."""

    model_config = ConfigDict(frozen=True)

    invitee: str = Field(description="'family', 'supporter' or a party id.")
    answer: str = Field(description="attending or rearrange.")
    on: date
    reason: str | None = None


class Meeting(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    mediator: MediatorSummary
    starts_at: datetime
    ends_at: datetime
    venue: Venue
    notice_given_on: date
    short_notice_consented: bool
    attendees: tuple[str, ...] = Field(description="Party ids invited to attend.")
    status: MeetingStatus = MeetingStatus.BOOKED
    cancelled_on: date | None = None
    cancelled_by: str | None = None
    cancellation_reason: str | None = None
    held_on: date | None = None
    outcome: MeetingOutcome | None = None
    replies: tuple[MeetingReplyRecord, ...] = Field(
        default=(), description="Invitees' answers: attending, or asking to rearrange."
    )


class AgreedAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    description: str
    owner: str = Field(description="Party id responsible for the action.")
    kind: ActionKind
    due_on: date | None = None
    completed_on: date | None = None
    reminded_on: date | None = None
    breached: bool = False


class Agreement(BaseModel):
    model_config = ConfigDict(frozen=True)

    recorded_on: date
    settled_issues: tuple[str, ...] = ()
    open_issues: tuple[str, ...] = ()
    actions: tuple[AgreedAction, ...] = ()
    signed_on: date | None = None
    signatories: tuple[str, ...] = ()


class PartyState(BaseModel):
    model_config = ConfigDict(frozen=True)

    party: Party
    answer: PartyAnswer = PartyAnswer.PENDING
    answered_on: date | None = None
    reason: str | None = None
    asked_on: date | None = None
    reminded_on: date | None = None
    availability: str | None = None
    adjustments: str | None = None

    @property
    def id(self) -> str:
        assert self.party.id is not None
        return self.party.id


class ClockClosure(BaseModel):
    """A closure decided by the clock alone (DR: nobody agreed by the response deadline).

    Until ``reopen_until`` a fact dated before ``closed_on`` (a party's answer given in time
    but recorded late) can still correct it: the referral reopens where the facts put it.
    """

    model_config = ConfigDict(frozen=True)

    closed_on: date = Field(description="The day the clock closed the referral.")
    window_ended_on: date = Field(description="The last day an answer counted (the deadline).")
    reopen_until: date = Field(description="The last day a correction can reopen it.")
    waived: tuple[str, ...] = Field(
        default=(), description="Deadlines the closure set aside (restored on reopening)."
    )
    told: tuple[str, ...] = Field(
        default=(), description="Who was told of the closure (told again of a reopening)."
    )
    final: bool = Field(default=False, description="The correction window has ended.")


LEGACY_RULES = 1
EDGE_RULES = 2
#: Rules 3 (personal links): the family is asked for its decision after the information
#: session, and meeting invitees may reply (``meeting-reply``). Includes rules 2.
PAGES_RULES = 3


class Referral(BaseModel):
    """The whole referral as the workflow holds it; the API's ``ReferralRead`` is built from it."""

    model_config = ConfigDict(frozen=True)

    id: str
    route: Route
    status: Status
    version: int = 0
    local_authority: str
    received_on: date
    created_at: datetime
    request: MediationReferralCreate | DisagreementResolutionReferralCreate = Field(
        discriminator="route"
    )
    certificate_required: bool
    notices: tuple[Notice, ...] = ()
    deadlines: dict[str, Deadline] = Field(default_factory=dict)
    certificates: tuple[Certificate, ...] = ()
    appeal_deadline: date | None = None
    parties: tuple[PartyState, ...] = ()
    meetings: tuple[Meeting, ...] = ()
    agreement: Agreement | None = None
    documents: tuple[DocumentRef, ...] = ()
    actioned_on: date | None = None
    information_session_on: date | None = None
    mediation_requested_on: date | None = None
    declined_on: date | None = None
    withdrawn_on: date | None = None
    closed_on: date | None = None
    outcome: Outcome | None = None
    closure_reason: str | None = None
    rules: int = Field(
        default=LEGACY_RULES,
        description="The rule set the referral runs under: 1 for referrals started before the "
        "lifecycle-edge rules (two kinds of clock, corrections, endings), 2 after, 3 with the "
        "personal links in emails (the family asked for its decision, meeting replies). Fixed for "
        "the referral's life, so a running case never changes rules half-way.",
    )
    parties_contacted_on: date | None = Field(
        default=None,
        description="DR: when the parties were asked; their response window counts from it.",
    )
    clock_closure: ClockClosure | None = None
    stopped_on: date | None = None

    @property
    def closed(self) -> bool:
        return self.status is Status.CLOSED

    @property
    def edges(self) -> bool:
        """Runs under the lifecycle-edge rules (see ``rules``)."""
        return self.rules >= EDGE_RULES

    @property
    def status_clock_running(self) -> bool:
        """The 30-day clock (DL-03/DL-05) is running: arranging or booked, not yet met."""
        arrange = self.deadlines.get(MEDIATION_ARRANGED_BY)
        return (
            self.status in (Status.ARRANGING_MEETING, Status.MEETING_BOOKED)
            and arrange is not None
            and arrange.open
        )

    @property
    def certificate(self) -> Certificate | None:
        return self.certificates[0] if self.certificates else None

    @property
    def current_meeting(self) -> Meeting | None:
        for meeting in reversed(self.meetings):
            if meeting.status is MeetingStatus.BOOKED:
                return meeting
        return None

    @property
    def held_meeting(self) -> Meeting | None:
        for meeting in self.meetings:
            if meeting.status is MeetingStatus.HELD:
                return meeting
        return None

    def party(self, party_id: str) -> PartyState | None:
        return next((p for p in self.parties if p.id == party_id), None)

    def next_deadline(self) -> tuple[str, Deadline] | None:
        open_ = [(name, d) for name, d in self.deadlines.items() if d.open]
        return min(open_, key=lambda item: (item[1].due_on, item[0])) if open_ else None

    @property
    def delivery_failed(self) -> bool:
        return any(d.failed for d in self.documents)

    @property
    def breached(self) -> bool:
        return any(d.breached for d in self.deadlines.values())
