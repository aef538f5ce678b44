"""Commands a back office sends to a referral (``POST /v1/referrals/{id}/{command}``).

Each is a frozen model; the HTTP body is exactly the model. Facts carry the date they
happened (``on``, default today in Europe/London; never in the future, never before the
referral was received): every deadline runs from the fact's date, not the request's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, HttpUrl, model_validator

from models.domain.base import (
    ActionKind,
    Identifier,
    IsoDate,
    IsoDateTime,
    MeetingOutcome,
    Strict,
    StrictBool,
    StrictInt,
    Text,
    VenueKind,
    refuse,
)

OnDate = Annotated[
    IsoDate | None,
    Field(
        default=None,
        description="The date it happened (default today, Europe/London). Never in the future, "
        "never before the referral was received.",
    ),
]


class Answer(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"


class Attendance(StrEnum):
    ATTENDING = "attending"
    REARRANGE = "rearrange"


class Action(Strict):
    """The provider has actioned the referral (service level DL-13: 5 working days)."""

    command: Literal["action"] = "action"
    on: OnDate = None


class InformationSession(Strict):
    """The Mediation Information and Awareness Session was held (reg 33 contact)."""

    command: Literal["information_session"] = "information_session"
    on: OnDate = None


class DeclineMediation(Strict):
    """The family told the provider it does not want mediation: certificate in 3 WD (DL-02)."""

    command: Literal["decline_mediation"] = "decline_mediation"
    on: OnDate = None


class RequestMediation(Strict):
    """The family wants mediation; the LA has been told: the 30-day clock starts (DL-03).

    Where health care provision is in issue the service tells each ICB on the LA's behalf
    the day it records this (DL-04); for a health-only dispute the ICB arranges mediation
    within 30 days of receiving that notice (DL-05). If the LA had already told the ICB,
    give the day the ICB received it as ``icb_notified_on``.
    """

    command: Literal["request_mediation"] = "request_mediation"
    on: OnDate = None
    issues: tuple[Text, ...] = Field(default=(), description="Mediation issues, if new.")
    icb_notified_on: IsoDate | None = Field(
        default=None,
        description="When the ICB received the LA's notice of the health issues, if the LA "
        "has already sent it (default: the service sends it now, so today). DL-05 (health "
        "only) counts 30 days from this day.",
    )


class LaUnableToArrange(Strict):
    """The LA told the provider it cannot arrange mediation in 30 days (DL-08 trigger).

    Only where a certificate is needed to appeal: for a section I-only, health-only or
    social-care-only dispute there is no deemed certificate, so this is a 409 saying why.
    """

    command: Literal["la_unable_to_arrange"] = "la_unable_to_arrange"
    on: OnDate = None


class PartyResponse(Strict):
    """A party says whether it will take part (Disagreement Resolution).

    Give the day the party answered as ``on``. If the referral was closed because nobody
    answered in time, an answer given on or before the last day of the response window can
    still be recorded until ``closure_correctable_until``: an acceptance reopens the referral
    and everyone told of the closure is told.
    """

    command: Literal["party_response"] = "party_response"
    party_id: Identifier
    answer: Answer
    reason: Text | None = Field(default=None, description="Required when declining.")
    on: OnDate = None
    availability: Text | None = Field(
        default=None, description="When the party can meet (taking part), in its own words."
    )
    adjustments: Text | None = Field(
        default=None, description="Any adjustments the party needs to take part."
    )

    @model_validator(mode="after")
    def _reason_for_decline(self) -> PartyResponse:
        if self.answer is Answer.DECLINED and not self.reason:
            refuse([("reason", "give the party's reason for declining")])
        return self


class RemoteVenue(Strict):
    kind: Literal[VenueKind.REMOTE] = VenueKind.REMOTE
    video_link: HttpUrl | None = Field(
        default=None, description="Zoom/Teams link; may be sent later with the invitation."
    )


class InPersonVenue(Strict):
    kind: Literal[VenueKind.IN_PERSON]
    venue_id: Identifier = Field(description="A neutral venue from /v1/venues.")


VenueChoice = Annotated[RemoteVenue | InPersonVenue, Field(discriminator="kind")]


class BookMeeting(Strict):
    """Book the meeting: an independent SEND-trained mediator, a venue, a time, notice."""

    command: Literal["book_meeting"] = "book_meeting"
    mediator_id: Identifier
    starts_at: IsoDateTime = Field(description="Start, RFC 3339 with offset.")
    duration_minutes: StrictInt = Field(
        default=150, ge=30, le=480, description="Usually 2–3 hours (DL-15). A JSON number."
    )
    venue: VenueChoice = RemoteVenue()
    notice_given_on: IsoDate | None = Field(
        default=None, description="When the family was told date and place (default today)."
    )
    short_notice_consented: StrictBool | None = Field(
        default=None,
        description="The family agrees to less than 5 working days' notice (DL-06); default "
        "from the referral's preferences.",
    )
    attendees: tuple[Identifier, ...] | None = Field(
        default=None, description="Party ids to invite; default every party taking part."
    )
    after_deadline_acknowledged: StrictBool = Field(
        default=False,
        description="Book after the 30-day date anyway (the deemed certificate still issues).",
    )

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_minutes)


class CancelMeeting(Strict):
    """Any party may cancel; the meeting can then be rebooked.

    The mediator's slot is released, and every invitee (the mediator and the supporter too)
    is told, with the calendar entry cancelled (same UID, higher SEQUENCE, METHOD:CANCEL).
    """

    command: Literal["cancel_meeting"] = "cancel_meeting"
    cancelled_by: Identifier = Field(
        description="Who cancelled: 'family', 'provider', 'mediator', 'supporter' or a party id "
        "(never a person's name: it is kept in the audit timeline)."
    )
    reason: Text
    on: OnDate = None


class ActionDraft(Strict):
    id: Identifier | None = Field(default=None, description="Assigned (action-1…) if omitted.")
    description: Text
    owner: Identifier = Field(description="Party id responsible.")
    kind: ActionKind = Field(
        description="What the action requires; sets the legal deadline (regs 42/44). Use "
        "agreed_date with due_on for a date the parties agreed in writing (and always on DR)."
    )
    due_on: IsoDate | None = Field(default=None, description="Required for agreed_date.")

    @model_validator(mode="after")
    def _due_for_agreed_date(self) -> ActionDraft:
        if self.kind is ActionKind.AGREED_DATE and self.due_on is None:
            refuse([("due_on", "an agreed_date action needs the date the parties agreed")])
        return self


class RecordMeeting(Strict):
    """The meeting was held: outcome, what was settled, what stays open for appeal."""

    command: Literal["record_meeting"] = "record_meeting"
    held_on: IsoDate | None = Field(default=None, description="Default today.")
    outcome: MeetingOutcome
    settled_issues: tuple[Text, ...] = ()
    open_issues: tuple[Text, ...] = Field(
        default=(), description="Issues still in dispute: they remain open for appeal."
    )
    agreed_actions: tuple[ActionDraft, ...] = ()

    @model_validator(mode="after")
    def _outcome_consistent(self) -> RecordMeeting:
        errors: list[tuple[str, str]] = []
        if self.outcome is MeetingOutcome.PARTIAL_AGREEMENT:
            why = "partial_agreement lists both settled_issues and open_issues (the open ones "
            why += "remain open for appeal)"
            if not self.settled_issues:
                errors.append(("settled_issues", why))
            if not self.open_issues:
                errors.append(("open_issues", why))
        if self.outcome is MeetingOutcome.NO_AGREEMENT and self.agreed_actions:
            errors.append(("agreed_actions", "none can be agreed with no_agreement"))
        if self.outcome is not MeetingOutcome.NO_AGREEMENT and not self.agreed_actions:
            errors.append(("agreed_actions", "record the actions the parties agreed"))
        refuse(errors)
        return self


class SignAgreement(Strict):
    """The written agreement is signed by all parties: agreed actions are now tracked."""

    command: Literal["sign_agreement"] = "sign_agreement"
    on: OnDate = None
    signatories: tuple[Identifier, ...] = Field(
        min_length=1, description="Party ids who signed ('family' for the parent or YP)."
    )


class CompleteAction(Strict):
    command: Literal["complete_action"] = "complete_action"
    action_id: Identifier
    on: OnDate = None


class MeetingReply(Strict):
    """An invitee confirms they will attend the booked meeting, or asks to rearrange it.

    ``invitee`` is 'family', 'supporter' or an invited party's id. The provider is told by
    email either way; asking to rearrange does not cancel the meeting (the provider decides:
    ``cancel-meeting``, then ``book-meeting``). Referrals opened before personal links
    existed do not take it (409).
    """

    command: Literal["meeting_reply"] = "meeting_reply"
    meeting_id: Identifier
    invitee: Identifier = Field(description="'family', 'supporter' or a party id.")
    answer: Attendance
    reason: Text | None = Field(default=None, description="Required when asking to rearrange.")
    on: OnDate = None

    @model_validator(mode="after")
    def _reason_to_rearrange(self) -> MeetingReply:
        if self.answer is Attendance.REARRANGE and not self.reason:
            refuse([("reason", "say why the meeting needs to be rearranged")])
        return self


class Withdraw(Strict):
    """The family withdraws the referral: it closes, and nothing more happens.

    A booked meeting is cancelled as by cancel-meeting (slot released, every invitee told,
    calendar entry cancelled, ``meeting.cancelled`` webhook), and the family is told in plain
    words what withdrawing means for their right of appeal (and the appeal deadline if one
    runs).
    """

    command: Literal["withdraw"] = "withdraw"
    on: OnDate = None
    reason: Text | None = None


Command = Annotated[
    Action
    | InformationSession
    | DeclineMediation
    | RequestMediation
    | LaUnableToArrange
    | PartyResponse
    | BookMeeting
    | CancelMeeting
    | RecordMeeting
    | SignAgreement
    | CompleteAction
    | Withdraw
    | MeetingReply,
    Field(discriminator="command"),
]

#: Facts already known when a referral is entered (``facts`` on ``POST /v1/referrals``): the
#: commands that record a dated fact before any meeting, applied in date order through the
#: same rules as the commands themselves.
KnownFact = Annotated[
    Action
    | InformationSession
    | DeclineMediation
    | RequestMediation
    | LaUnableToArrange
    | PartyResponse,
    Field(discriminator="command"),
]
