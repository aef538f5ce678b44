"""The referral state machine: which command is legal when, and what it changes.

Pure and deterministic. ``decide()`` takes the referral, a command and a ``Context`` (today's
London date, the bank holiday calendar, the actor, a number generator) and returns a
``Decision``: the new referral, the effects to run (as data) and the audit events. Opening a
referral is ``intake.py``'s; what time alone changes (``tick()``, ``next_wake()``) is
``timers.py``'s. The workflow feeds all three and runs the effects.

Two kinds of clock. **Statutory deadlines** (DL-01…DL-13) run from their legal trigger dates,
which may lie in the past: a referral entered late can be in breach the moment it opens.
**Clocks the service sets to give someone time to act** (the Disagreement Resolution response
window and its reminder, the "reply by" dates in notices) run from the day that person was
actually asked: the day the service contacts them (today, for a late entry) or a
``parties_contacted_on`` the caller gives. No notice ever asks anyone to act by a date that
has passed; a late notice says what is overdue and what happens next.

Referrals carry the rule set they started under (``Referral.rules``): the rules below marked
"rules 2" (the lifecycle edges: the two clocks, facts at intake, corrections of clock-made
breaches and closures, endings that release a booked meeting, A15/A16, no-certificate
disputes) apply only to referrals opened under them, so a running case never changes rules
half-way and the workflow histories recorded before them replay unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.domain import deadlines as dl
from models.domain import documents as docs
from models.domain.clock import london_date
from models.domain.commands import (
    Action,
    Answer,
    BookMeeting,
    CancelMeeting,
    Command,
    CompleteAction,
    DeclineMediation,
    InformationSession,
    LaUnableToArrange,
    MeetingReply,
    PartyResponse,
    RecordMeeting,
    RequestMediation,
    SignAgreement,
    Withdraw,
)
from models.domain.documents import FAMILY, MEDIATOR, SUPPORTER
from models.domain.referral import (
    EDGE_RULES,
    PAGES_RULES,
    ActionKind,
    AgreedAction,
    Agreement,
    Certificate,
    CertificateKind,
    ClockClosure,
    DocumentRef,
    MediationReferralCreate,
    MediatorSummary,
    Meeting,
    MeetingOutcome,
    MeetingReplyRecord,
    MeetingStatus,
    Outcome,
    PartyAnswer,
    PartyState,
    PlanSection,
    Referral,
    Route,
    Status,
    Venue,
)

SYSTEM = "system"
#: The referral's mediation provider, as a notification recipient (its registry email).
PROVIDER = "provider"
CANCELLERS = frozenset({"provider", "mediator", "supporter"})
#: Rules 2: a closure decided by the clock alone can be corrected for this long.
REOPEN_WINDOW = timedelta(days=30)
#: Rules 2: the actor of an operator's cancellation when the request names nobody.
OPERATOR = "operator (Temporal Web UI)"


class Policy(BaseModel):
    """Service levels and reminder timings (from the council's provider and settings)."""

    model_config = ConfigDict(frozen=True)

    referral_action_working_days: int = Field(default=dl.REFERRAL_ACTION_WORKING_DAYS, ge=1, le=30)
    dr_response_working_days: int = Field(default=10, ge=1, le=60)
    dr_reminder_working_days: int = Field(default=5, ge=1, le=60)
    action_reminder_working_days: int = Field(default=3, ge=1, le=30)


class IllegalTransition(Exception):
    """The command is not legal in the referral's current state (HTTP 409)."""

    def __init__(self, message: str, *, status: Status, allowed: Iterable[str]) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.allowed = tuple(allowed)


class InvalidCommand(ValueError):
    """The command is malformed for this referral (HTTP 422), e.g. a date in the future."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# ---------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class Notify:
    """Tell parties something (a notification activity; documents are separate effects)."""

    template: str
    recipients: tuple[str, ...]
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DispatchCertificate:
    certificate: Certificate
    recipients: tuple[str, ...]  # documents.certificate_recipients


@dataclass(frozen=True)
class DispatchInvitation:
    meeting: Meeting
    recipients: tuple[str, ...]  # documents.invitation_recipients


@dataclass(frozen=True)
class DispatchAgreement:
    agreement: Agreement
    recipients: tuple[str, ...]  # documents.agreement_recipients


Effect = Notify | DispatchCertificate | DispatchInvitation | DispatchAgreement


class Event(BaseModel):
    """One entry of the audit timeline. ``data`` holds what changed, never free text."""

    model_config = ConfigDict(frozen=True)

    type: str
    on: date
    actor: str
    data: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    referral: Referral
    effects: tuple[Effect, ...] = ()
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Context:
    today: date
    cal: dl.HolidayCalendar
    policy: Policy
    actor: str = SYSTEM
    new_number: Callable[[str], str] = lambda prefix: f"{prefix}-0"
    rules: int = EDGE_RULES  # stamped on a referral when it opens (Referral.rules)


# ---------------------------------------------------------------------------- the table

M = Route.MEDIATION
D = Route.DISAGREEMENT_RESOLUTION
S = Status

# No party_response in Mediation: the parties there (the LA, the ICB) cannot decline it
# (intake.cannot_decline_mediation, RULES.md §2); only the family decides.
LEGAL: Mapping[tuple[Route, Status], frozenset[str]] = {
    (M, S.AWAITING_INFORMATION_SESSION): frozenset(
        {"action", "information_session", "request_mediation", "withdraw"}
    ),
    (M, S.AWAITING_FAMILY_DECISION): frozenset(
        {"action", "decline_mediation", "request_mediation", "withdraw"}
    ),
    (M, S.ARRANGING_MEETING): frozenset(
        {"action", "book_meeting", "la_unable_to_arrange", "decline_mediation", "withdraw"}
    ),
    (M, S.MEETING_BOOKED): frozenset(
        {
            "action",
            "cancel_meeting",
            "record_meeting",
            "la_unable_to_arrange",
            "decline_mediation",
            "meeting_reply",
            "withdraw",
        }
    ),
    (M, S.AGREEMENT_AWAITING_SIGNATURE): frozenset({"action", "sign_agreement", "withdraw"}),
    (M, S.TRACKING_ACTIONS): frozenset({"action", "complete_action", "withdraw"}),
    (M, S.CLOSED): frozenset(),
    (M, S.STOPPED): frozenset(),
    (D, S.AWAITING_PARTY_RESPONSES): frozenset(
        {"action", "party_response", "book_meeting", "withdraw"}
    ),
    (D, S.ARRANGING_MEETING): frozenset({"action", "party_response", "book_meeting", "withdraw"}),
    (D, S.MEETING_BOOKED): frozenset(
        {"action", "cancel_meeting", "record_meeting", "meeting_reply", "withdraw"}
    ),
    (D, S.AGREEMENT_AWAITING_SIGNATURE): frozenset({"action", "sign_agreement", "withdraw"}),
    (D, S.TRACKING_ACTIONS): frozenset({"action", "complete_action", "withdraw"}),
    (D, S.CLOSED): frozenset(),
    (D, S.STOPPED): frozenset(),
}


def allowed_commands(referral: Referral) -> tuple[str, ...]:
    """Commands legal now (the ``action`` command only until the provider has actioned)."""
    legal = set(LEGAL[(referral.route, referral.status)])
    if referral.actioned_on is not None:
        legal.discard("action")
    if referral.edges:
        if not referral.certificate_required:
            legal.discard("la_unable_to_arrange")  # no certificate, so no DL-08
        if _correctable(referral):
            legal.add("party_response")  # an answer given in time can still reopen it
    if referral.rules < PAGES_RULES:
        legal.discard("meeting_reply")  # rules 3: an invitee attends, or asks to rearrange
    return tuple(sorted(legal))


def _correctable(referral: Referral) -> bool:
    closure = referral.clock_closure
    return referral.closed and closure is not None and not closure.final


def finished(referral: Referral) -> bool:
    """Nothing more can happen: closed, and no closure by the clock is still correctable."""
    return referral.closed and not _correctable(referral)


def _illegal(referral: Referral, message: str) -> IllegalTransition:
    allowed = allowed_commands(referral)
    hint = f"allowed now: {', '.join(allowed)}" if allowed else "nothing is allowed after closure"
    return IllegalTransition(
        f"{message} (referral is {referral.status.value}; {hint})",
        status=referral.status,
        allowed=allowed,
    )


# ---------------------------------------------------------------------------- helpers


def _replace(referral: Referral, **changes: Any) -> Referral:
    return referral.model_copy(update=changes)


def _set_deadline(referral: Referral, name: str, deadline: dl.Deadline) -> Referral:
    return _replace(referral, deadlines={**referral.deadlines, name: deadline})


def _set(referral: Referral, spec: dl.DeadlineSpec, due_on: date, **state: Any) -> Referral:
    """Set the catalogue's deadline ``spec`` (``models/domain/deadlines.py``), due ``due_on``."""
    return _set_deadline(referral, spec.name, spec.deadline(due_on, **state))


def _meet(referral: Referral, name: str, on: date) -> tuple[Referral, list[Event]]:
    deadline = referral.deadlines.get(name)
    if deadline is None:
        return referral, []
    if not deadline.open:
        if referral.edges and deadline.breached and deadline.met_on is None:
            return _redecide_breach(referral, name, deadline, on)
        return referral, []
    met = deadline.model_copy(update={"met_on": on, "breached": on > deadline.due_on})
    event_type = "deadline.met" if not met.breached else "deadline.missed"
    event = Event(
        type=event_type,
        on=on,
        actor=SYSTEM,
        data={"deadline": name, "rule": deadline.rule, "due_on": deadline.due_on.isoformat()},
    )
    return _set_deadline(referral, name, met), [event]


def _redecide_breach(
    referral: Referral, name: str, deadline: dl.Deadline, on: date
) -> tuple[Referral, list[Event]]:
    """Rules 2: the clock marked ``deadline`` breached because nothing was recorded by its
    day; now the fact has arrived. Dated on or before the day, the breach was wrong: the
    deadline is met (``deadline.met`` with ``corrected``, published after the earlier
    ``deadline.breached``). Dated after it, the breach stands and the day it was met is kept.
    """
    in_time = on <= deadline.due_on
    data: dict[str, Any] = {
        "deadline": name,
        "rule": deadline.rule,
        "due_on": deadline.due_on.isoformat(),
        "met_on": on.isoformat(),
    }
    met = deadline.model_copy(update={"met_on": on, "breached": not in_time})
    if in_time:
        event = Event(type="deadline.met", on=on, actor=SYSTEM, data={**data, "corrected": True})
    else:
        event = Event(type="deadline.missed", on=on, actor=SYSTEM, data=data)
    return _set_deadline(referral, name, met), [event]


def _waive_open(referral: Referral) -> Referral:
    return _replace(
        referral,
        deadlines={
            name: d.model_copy(update={"waived": True}) if d.open else d
            for name, d in referral.deadlines.items()
        },
    )


def _status(referral: Referral, status: Status, on: date, actor: str) -> tuple[Referral, Event]:
    event = Event(
        type="referral.status_changed",
        on=on,
        actor=actor,
        data={"from": referral.status.value, "to": status.value},
    )
    return _replace(referral, status=status), event


def _close(
    referral: Referral, outcome: Outcome, on: date, actor: str, reason: str
) -> tuple[Referral, list[Event]]:
    referral, changed = _status(_waive_open(referral), Status.CLOSED, on, actor)
    referral = _replace(referral, outcome=outcome, closed_on=on, closure_reason=reason)
    closed = Event(type="referral.closed", on=on, actor=actor, data={"outcome": outcome.value})
    return referral, [changed, closed]


def _end(
    referral: Referral,
    outcome: Outcome,
    on: date,
    actor: str,
    reason: str,
    *,
    meeting_reason: str,
    cancelled_by: str,
) -> tuple[Referral, list[Effect], list[Event]]:
    """Close, and (rules 2) first release what is live: a booked meeting is cancelled,
    everyone invited to it (the mediator too) is told with a cancelled calendar entry, and
    the workflow frees the mediator's slot."""
    effects: list[Effect] = []
    events: list[Event] = []
    if referral.edges and referral.current_meeting is not None:
        referral, effects, events = _cancel_meeting(
            referral, on, actor, cancelled_by=cancelled_by, reason=meeting_reason
        )
    referral, closed = _close(referral, outcome, on, actor, reason)
    return referral, effects, [*events, *closed]


#: Why a meeting was cancelled (a code: in the timeline, the notice and the webhook).
MEETING_CANCELLED = "cancelled"
MEETING_WITHDRAWN = "referral_withdrawn"
MEETING_DECLINED = "mediation_declined"
MEETING_OPERATOR = "referral_cancelled"


def _cancel_meeting(
    referral: Referral,
    on: date,
    actor: str,
    *,
    cancelled_by: str,
    reason: str,
    reason_text: str | None = None,
) -> tuple[Referral, list[Effect], list[Event]]:
    """The booked meeting is cancelled: who is told, and with what (rules 2: every invitee,
    the mediator and the supporter included, and a cancelled calendar entry)."""
    meeting = referral.current_meeting
    assert meeting is not None
    cancelled = meeting.model_copy(
        update={
            "status": MeetingStatus.CANCELLED,
            "cancelled_on": on,
            "cancelled_by": cancelled_by,
            "cancellation_reason": reason_text or _MEETING_REASONS.get(reason, reason),
        }
    )
    referral = _replace(
        referral,
        meetings=tuple(cancelled if m.id == meeting.id else m for m in referral.meetings),
    )
    data = {"meeting": meeting.id, "cancelled_by": cancelled_by}
    if referral.edges:
        data["reason"] = reason
    event = Event(type="meeting.cancelled", on=on, actor=actor, data=data)
    recipients: tuple[str, ...] = (FAMILY, *meeting.attendees)
    notice: dict[str, str] = {"meeting": meeting.id, "starts_at": meeting.starts_at.isoformat()}
    if referral.edges:
        supporter = (SUPPORTER,) if referral.request.supporter is not None else ()
        recipients = tuple(dict.fromkeys((*recipients, MEDIATOR, *supporter)))
        notice |= {"mediator": meeting.mediator.id, "reason": reason}
    return referral, [Notify("meeting_cancelled", recipients, notice)], [event]


_MEETING_REASONS: Mapping[str, str] = {
    MEETING_WITHDRAWN: "the referral was withdrawn",
    MEETING_DECLINED: "the family decided not to mediate",
    MEETING_OPERATOR: "the case was cancelled by an operator",
}


def appeal_position(referral: Referral) -> dict[str, str]:
    """What the referral's ending means for the family's right of appeal, as notice data
    (codes and ISO dates; the words are the notice's): ``appeal`` is

    - ``dr``: Disagreement Resolution does not touch any right of appeal;
    - ``no_tribunal``: health and/or social care only, not appealable on its own;
    - ``no_certificate_needed``: section I only, with ``appeal_deadline``;
    - ``certificate_issued``: with the certificate's ``appeal_deadline``;
    - ``certificate_needed``: none issued yet; ``contact_by`` (DL-01) and the
      ``appeal_deadline`` on the facts so far (a certificate can only move it later).
    """
    if referral.route is Route.DISAGREEMENT_RESOLUTION:
        return {"appeal": "dr"}
    request = _mediation(referral)
    if request.health_or_social_care_only:
        return {"appeal": "no_tribunal"}
    out: dict[str, str] = {}
    if referral.appeal_deadline is not None:
        out["appeal_deadline"] = referral.appeal_deadline.isoformat()
    if request.section_i_only:
        return {"appeal": "no_certificate_needed", **out}
    if referral.certificates:
        return {"appeal": "certificate_issued", **out}
    contact = referral.deadlines.get(dl.CONTACT_ADVISER_BY)
    if contact is not None:
        out["contact_by"] = contact.due_on.isoformat()
    return {"appeal": "certificate_needed", **out}


def _fact_date(on: date | None, referral: Referral, today: date, name: str = "on") -> date:
    when = on or today
    if when > today:
        raise InvalidCommand(
            f"{name}: {when.isoformat()} is in the future (today is {today.isoformat()})",
            field=name,
        )
    if when < referral.received_on:
        raise InvalidCommand(
            f"{name}: {when.isoformat()} is before the referral was received "
            f"({referral.received_on.isoformat()})",
            field=name,
        )
    return when


def _mediation(referral: Referral) -> MediationReferralCreate:
    assert isinstance(referral.request, MediationReferralCreate)
    return referral.request


def _everyone(referral: Referral) -> tuple[str, ...]:
    return (FAMILY, *(p.id for p in referral.parties))


def _taking_part(referral: Referral) -> tuple[str, ...]:
    """Party ids expected at a meeting: required and accepting parties, and invitees."""
    return tuple(
        p.id
        for p in referral.parties
        if p.answer in (PartyAnswer.REQUIRED, PartyAnswer.ACCEPTED)
        or (referral.route is Route.MEDIATION and p.answer is PartyAnswer.PENDING)
    )


def _appeal_deadline(referral: Referral, cal: dl.HolidayCalendar) -> date | None:
    if referral.route is not Route.MEDIATION:
        return None
    request = _mediation(referral)
    if request.health_or_social_care_only:
        return None  # no Tribunal appeal (RULES.md §2 M9/M10)
    first = referral.certificates[0].issued_on if referral.certificates else None
    return dl.appeal_deadline(
        request.decision.decision_date, first, request.section_i_only, cal
    ).appeal_deadline


def _issue_certificate(
    referral: Referral,
    kind: CertificateKind,
    due_on: date,
    spec: dl.DeadlineSpec,
    ctx: Context,
) -> tuple[Referral, list[Effect], list[Event]]:
    request = _mediation(referral)
    issued_on = ctx.today
    certificate = Certificate(
        number=ctx.new_number(docs.PREFIX["certificate"]),
        kind=kind,
        issued_on=issued_on,
        due_on=due_on,
        on_time=issued_on <= due_on,
        section_i_note=(
            "The appeal includes section I (the named school or placement): no certificate "
            "is needed to appeal section I alone."
            if PlanSection.I in request.decision.sections
            else None
        ),
    )
    referral = _replace(referral, certificates=(*referral.certificates, certificate))
    appeal = _appeal_deadline(referral, ctx.cal)
    certificate = certificate.model_copy(update={"appeal_deadline": appeal})
    referral = _replace(
        referral,
        certificates=(*referral.certificates[:-1], certificate),
        appeal_deadline=appeal,
    )
    if spec.name not in referral.deadlines:
        referral = _set(referral, spec, due_on)
    referral, met = _meet(referral, spec.name, issued_on)
    if appeal is not None:
        # The family's deadline: shown, never marked breached.
        referral = _set(referral, dl.APPEAL, appeal, waived=True)
    event = Event(
        type="certificate.issued",
        on=issued_on,
        actor=SYSTEM,
        data={
            "number": certificate.number,
            "kind": kind.value,
            "due_on": due_on.isoformat(),
            "on_time": certificate.on_time,
            "appeal_deadline": appeal.isoformat() if appeal else None,
        },
    )
    dispatch = DispatchCertificate(certificate, docs.certificate_recipients(referral))
    return referral, [dispatch], [*met, event]


# ---------------------------------------------------------------------------- commands


def check(referral: Referral, command: Command, today: date, cal: dl.HolidayCalendar) -> None:
    """Validator: raise ``IllegalTransition`` or ``InvalidCommand`` if ``command`` can't apply.

    Cheap and side-effect free, so the workflow's update validator can call it and reject an
    illegal command before it reaches history.
    """
    name = command.command
    correction = isinstance(command, PartyResponse) and _correctable(referral)
    if name not in LEGAL[(referral.route, referral.status)] and not correction:
        raise _illegal(referral, f"'{name.replace('_', '-')}' is not possible now")
    if name == "action" and referral.actioned_on is not None:
        raise _illegal(referral, f"already actioned on {referral.actioned_on.isoformat()}")
    on = getattr(command, "on", None)
    if "on" in type(command).model_fields:
        _fact_date(on, referral, today)
    match command:
        case DeclineMediation():
            if referral.declined_on is not None:
                raise _illegal(referral, "mediation was already declined")
        case RequestMediation():
            if referral.mediation_requested_on is not None:
                raise _illegal(referral, "mediation was already requested")
            if referral.edges and command.icb_notified_on is not None:
                _check_icb_notified(referral, command, today)
        case LaUnableToArrange():
            if referral.edges and not referral.certificate_required:
                raise _illegal(
                    referral,
                    "'la-unable-to-arrange' does not apply: this dispute needs no mediation "
                    "certificate to appeal (section I only, health only or social care only), "
                    "so the LA being unable to arrange mediation leads to no deemed certificate "
                    "(DL-08 applies only where the LA arranges and a certificate is needed)",
                )
            if referral.certificates:
                raise _illegal(referral, "a certificate has already been issued")
            when = command.on or today
            if referral.mediation_requested_on and when < referral.mediation_requested_on:
                raise InvalidCommand("on: before mediation was requested", field="on")
        case PartyResponse():
            party = referral.party(command.party_id)
            if party is None or party.asked_on is None:
                raise InvalidCommand(
                    f"party_id: '{command.party_id}' is not a party asked to take part "
                    f"(parties: {', '.join(p.id for p in referral.parties if p.asked_on)})",
                    field="party_id",
                )
            if correction:
                _check_correction(referral, command, today)
        case BookMeeting():
            _check_booking(referral, command, today, cal)
        case CancelMeeting():
            if referral.current_meeting is None:
                raise _illegal(referral, "there is no booked meeting to cancel")
            who = {*_everyone(referral), *CANCELLERS}
            if command.cancelled_by not in who:
                raise InvalidCommand(
                    f"cancelled_by: one of {', '.join(sorted(who))} (a party id or a role, "
                    "never a person's name)",
                    field="cancelled_by",
                )
        case RecordMeeting():
            _check_record(referral, command, today)
        case SignAgreement():
            _check_signatures(referral, command)
        case CompleteAction():
            action = _action(referral, command.action_id)
            if action.completed_on is not None:
                raise _illegal(referral, f"action '{action.id}' was completed already")
        case MeetingReply():
            if referral.rules < PAGES_RULES:
                raise _illegal(referral, "this referral predates meeting replies")
            _check_reply(referral, command)
        case _:
            pass


def _invitees(referral: Referral, meeting: Meeting) -> tuple[str, ...]:
    """Who is invited to ``meeting``: the family, its supporter, each attending party."""
    supporter = (SUPPORTER,) if referral.request.supporter is not None else ()
    return (FAMILY, *supporter, *meeting.attendees)


def _check_reply(referral: Referral, command: MeetingReply) -> None:
    meeting = referral.current_meeting
    assert meeting is not None, "meeting_reply is allowed only while a meeting is booked"
    if command.meeting_id != meeting.id:
        raise _illegal(
            referral, f"meeting '{command.meeting_id}' is not the booked one ('{meeting.id}')"
        )
    invited = _invitees(referral, meeting)
    if command.invitee not in invited:
        raise InvalidCommand(
            f"invitee: '{command.invitee}' is not invited (invitees: {', '.join(invited)})",
            field="invitee",
        )


def _meeting_reply(referral: Referral, command: MeetingReply, ctx: Context) -> Decision:
    """Rules 3: record the invitee's answer on the meeting and tell the provider."""
    on = _fact_date(command.on, referral, ctx.today)
    meeting = referral.current_meeting
    assert meeting is not None
    reply = MeetingReplyRecord(
        invitee=command.invitee, answer=command.answer.value, on=on, reason=command.reason
    )
    replies = (*(r for r in meeting.replies if r.invitee != command.invitee), reply)
    updated = meeting.model_copy(update={"replies": replies})
    referral = _replace(
        referral, meetings=tuple(updated if m.id == meeting.id else m for m in referral.meetings)
    )
    data = {"meeting": meeting.id, "invitee": command.invitee, "answer": command.answer.value}
    event = Event(type="meeting.reply", on=on, actor=ctx.actor, data=data)
    notify = Notify(
        template="meeting_reply",
        recipients=(PROVIDER,),
        data={
            **data,
            "starts_at": meeting.starts_at.isoformat(),
            **({"reason": command.reason} if command.reason else {}),
        },
    )
    return Decision(referral, (notify,), (event,))


def _check_icb_notified(referral: Referral, command: RequestMediation, today: date) -> None:
    request = _mediation(referral)
    when = command.icb_notified_on
    assert when is not None
    if not request.health_care_in_issue:
        raise InvalidCommand(
            "icb_notified_on: health care provision is not in issue, so no ICB is told",
            field="icb_notified_on",
        )
    if when > today or when < (command.on or today):
        raise InvalidCommand(
            "icb_notified_on: must be between the day mediation was requested and today",
            field="icb_notified_on",
        )


def _check_correction(referral: Referral, command: PartyResponse, today: date) -> None:
    """Rules 2: an answer recorded after the clock closed the referral for want of answers."""
    closure = referral.clock_closure
    assert closure is not None
    party = referral.party(command.party_id)
    assert party is not None
    if party.answer is not PartyAnswer.NO_RESPONSE:
        raise _illegal(
            referral,
            f"the referral is closed and '{party.id}' had already answered ({party.answer.value})",
        )
    on = command.on or today
    if on > closure.window_ended_on:
        raise _illegal(
            referral,
            f"the referral closed on {closure.closed_on.isoformat()} because nobody agreed to "
            f"take part by {closure.window_ended_on.isoformat()}; only an answer given on or "
            f"before {closure.window_ended_on.isoformat()} can reopen it "
            f"(until {closure.reopen_until.isoformat()})",
        )


def _action(referral: Referral, action_id: str) -> AgreedAction:
    actions = referral.agreement.actions if referral.agreement else ()
    for action in actions:
        if action.id == action_id:
            return action
    raise InvalidCommand(
        f"action_id: no agreed action '{action_id}' "
        f"(actions: {', '.join(a.id for a in actions) or 'none'})",
        field="action_id",
    )


def _check_booking(
    referral: Referral, command: BookMeeting, today: date, cal: dl.HolidayCalendar
) -> None:
    meeting_day = london_date(command.starts_at)
    notice_on = command.notice_given_on or today
    if meeting_day < today:
        raise InvalidCommand("starts_at: the meeting would be in the past", field="starts_at")
    if notice_on > today or notice_on < referral.received_on:
        raise InvalidCommand(
            "notice_given_on: must be between the referral's receipt and today",
            field="notice_given_on",
        )
    if referral.route is Route.DISAGREEMENT_RESOLUTION and not any(
        p.answer is PartyAnswer.ACCEPTED for p in referral.parties
    ):
        raise _illegal(referral, "no party has agreed to take part yet")
    if command.attendees is not None:
        known = set(_everyone(referral))
        unknown = [a for a in command.attendees if a not in known]
        if unknown:
            raise InvalidCommand(
                f"attendees: unknown party ids {unknown} (known: {', '.join(sorted(known))})",
                field="attendees",
            )
        declined = [
            a
            for a in command.attendees
            if (p := referral.party(a))
            and p.answer in (PartyAnswer.DECLINED, PartyAnswer.NO_RESPONSE)
        ]
        if declined:
            raise InvalidCommand(f"attendees: {declined} are not taking part", field="attendees")
    arrange_by = referral.deadlines.get(dl.MEDIATION_ARRANGED_BY)
    if (
        arrange_by is not None
        and meeting_day > arrange_by.due_on
        and not referral.certificates
        and not command.after_deadline_acknowledged
    ):
        raise InvalidCommand(
            f"starts_at: {meeting_day.isoformat()} is after the 30-day date "
            f"{arrange_by.due_on.isoformat()} ({arrange_by.rule}): the deemed certificate will be "
            f"issued on {(arrange_by.due_on + dl.ONE_DAY).isoformat()} whatever happens. Choose "
            "an earlier slot, or set after_deadline_acknowledged to book anyway",
            field="starts_at",
        )
    notice = dl.latest_notice_dates(meeting_day, cal)
    if notice_on > notice.safest and not short_notice_consented(referral, command):
        raise InvalidCommand(
            f"starts_at: a meeting on {meeting_day.isoformat()} needs notice by "
            f"{notice.safest.isoformat()} (5 clear working days, DL-06), but notice is given "
            f"on {notice_on.isoformat()}. Choose a later date, or record that the family "
            "consents to shorter notice (short_notice_consented)",
            field="starts_at",
        )


def short_notice_consented(referral: Referral, command: BookMeeting) -> bool:
    if command.short_notice_consented is not None:
        return command.short_notice_consented
    return referral.request.preferences.consents_to_short_notice


def _check_record(referral: Referral, command: RecordMeeting, today: date) -> None:
    meeting = referral.current_meeting
    assert meeting is not None
    held_on = _fact_date(command.held_on, referral, today, "held_on")
    booked_day = london_date(meeting.starts_at)
    if held_on < booked_day:
        raise InvalidCommand(
            f"held_on: {held_on.isoformat()} is before the booked date {booked_day.isoformat()}; "
            "if the meeting moved, cancel and rebook it first",
            field="held_on",
        )
    owners = set(_everyone(referral))
    for draft in command.agreed_actions:
        if draft.owner not in owners:
            raise InvalidCommand(
                f"agreed_actions: owner '{draft.owner}' is not a party "
                f"(parties: {', '.join(sorted(owners))})",
                field="agreed_actions",
            )
        if (
            referral.route is Route.DISAGREEMENT_RESOLUTION
            and draft.kind is not ActionKind.AGREED_DATE
        ):
            raise InvalidCommand(
                "agreed_actions: Disagreement Resolution has no statutory periods; use kind "
                "agreed_date with the parties' own due_on",
                field="agreed_actions",
            )
    ids = [d.id for d in command.agreed_actions if d.id]
    if len(ids) != len(set(ids)):
        raise InvalidCommand("agreed_actions: action ids must be unique", field="agreed_actions")


def _check_signatures(referral: Referral, command: SignAgreement) -> None:
    meeting = referral.held_meeting
    needed = {FAMILY, *(meeting.attendees if meeting else ())}
    needed = {n for n in needed if n == FAMILY or _is_party_to_agreement(referral, n)}
    missing = sorted(needed - set(command.signatories))
    if missing:
        raise InvalidCommand(
            f"signatories: the agreement must be signed by all parties; missing {missing}",
            field="signatories",
        )
    unknown = sorted(set(command.signatories) - set(_everyone(referral)))
    if unknown:
        raise InvalidCommand(f"signatories: unknown party ids {unknown}", field="signatories")


def _is_party_to_agreement(referral: Referral, party_id: str) -> bool:
    """Parties sign; people merely invited to help (SENCO, supporter) do not have to."""
    party = referral.party(party_id)
    return party is not None and party.answer in (PartyAnswer.REQUIRED, PartyAnswer.ACCEPTED)


def decide(
    referral: Referral,
    command: Command,
    ctx: Context,
    *,
    mediator: MediatorSummary | None = None,
    venue: Venue | None = None,
) -> Decision:
    """Apply a legal command (``check()`` first). Bookings carry the vetted mediator and venue."""
    check(referral, command, ctx.today, ctx.cal)
    referral = _replace(referral, version=referral.version + 1)
    actor = ctx.actor
    match command:
        case Action():
            on = _fact_date(command.on, referral, ctx.today)
            referral = _replace(referral, actioned_on=on)
            referral, met = _meet(referral, dl.REFERRAL_ACTIONED_BY, on)
            return Decision(
                referral, (), (Event(type="referral.actioned", on=on, actor=actor), *met)
            )
        case InformationSession():
            on = _fact_date(command.on, referral, ctx.today)
            referral = _replace(referral, information_session_on=on)
            referral, changed = _status(referral, Status.AWAITING_FAMILY_DECISION, on, actor)
            held = Event(type="information_session.held", on=on, actor=actor)
            # Rules 3: the family is asked for its decision, with its own link to answer.
            ask = (Notify(template="family_decision", recipients=(FAMILY,)),)
            return Decision(referral, ask if referral.rules >= PAGES_RULES else (), (held, changed))
        case MeetingReply():
            return _meeting_reply(referral, command, ctx)
        case DeclineMediation():
            return _decline(referral, command, ctx)
        case RequestMediation():
            return _request(referral, command, ctx)
        case LaUnableToArrange():
            on = _fact_date(command.on, referral, ctx.today)
            due = dl.deemed_certificate_due_by(
                on, referral.deadlines[dl.MEDIATION_ARRANGED_BY].due_on, ctx.cal
            )
            referral = _set(referral, dl.DEEMED_CERT_LA_UNABLE, due)
            events: list[Event] = [Event(type="mediation.la_unable_to_arrange", on=on, actor=actor)]
            effects: list[Effect] = []
            if referral.certificate_required:
                referral, fx, ev = _issue_certificate(
                    referral, CertificateKind.DEEMED, due, dl.DEEMED_CERT_LA_UNABLE, ctx
                )
                effects += fx
                events += ev
            return Decision(referral, tuple(effects), tuple(events))
        case PartyResponse():
            if _correctable(referral):
                return _correct_closure(referral, command, ctx)
            return _party_response(referral, command, ctx)
        case BookMeeting():
            assert mediator is not None, "vet the booking first"
            assert venue is not None, "vet the booking first"
            return _book(referral, command, ctx, mediator, venue)
        case CancelMeeting():
            on = _fact_date(command.on, referral, ctx.today)
            referral, fx, ev = _cancel_meeting(
                referral,
                on,
                actor,
                cancelled_by=command.cancelled_by,
                reason=MEETING_CANCELLED,
                reason_text=command.reason,
            )
            referral, changed = _status(referral, Status.ARRANGING_MEETING, on, actor)
            return Decision(referral, tuple(fx), (*ev, changed))
        case RecordMeeting():
            return _record(referral, command, ctx)
        case SignAgreement():
            return _sign(referral, command, ctx)
        case CompleteAction():
            on = _fact_date(command.on, referral, ctx.today)
            agreement = referral.agreement
            assert agreement is not None
            before = _action(referral, command.action_id)
            # Rules 2: done on or before its day, a breach the clock decided was wrong.
            corrected = (
                referral.edges
                and before.breached
                and before.due_on is not None
                and on <= before.due_on
            )
            actions = tuple(
                a.model_copy(update={"completed_on": on, "breached": a.breached and not corrected})
                if a.id == command.action_id
                else a
                for a in agreement.actions
            )
            agreement = agreement.model_copy(update={"actions": actions})
            referral = _replace(referral, agreement=agreement)
            action = _action(referral, command.action_id)
            event = Event(
                type="action.completed",
                on=on,
                actor=actor,
                data={
                    "action": action.id,
                    "due_on": action.due_on.isoformat() if action.due_on else None,
                    "on_time": action.due_on is None or on <= action.due_on,
                },
            )
            if corrected:
                event = event.model_copy(update={"data": {**event.data, "breach_corrected": True}})
            if all(a.completed_on is not None for a in actions):
                outcome = Outcome.PARTIAL_AGREEMENT if agreement.open_issues else Outcome.AGREEMENT
                referral, closed = _close(
                    referral, outcome, on, actor, "every agreed action is complete"
                )
                return Decision(referral, (), (event, *closed))
            return Decision(referral, (), (event,))
        case Withdraw():
            on = _fact_date(command.on, referral, ctx.today)
            referral = _replace(referral, withdrawn_on=on)
            referral, fx, closed = _end(
                referral,
                Outcome.WITHDRAWN,
                on,
                actor,
                "the family withdrew the referral",
                meeting_reason=MEETING_WITHDRAWN,
                cancelled_by=FAMILY,
            )
            data = appeal_position(referral) if referral.edges else {}
            notify = Notify(
                template="referral_withdrawn", recipients=_everyone(referral), data=data
            )
            return Decision(
                referral,
                (*fx, notify),
                (Event(type="referral.withdrawn", on=on, actor=actor), *closed),
            )
    raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover


def _decline(referral: Referral, command: DeclineMediation, ctx: Context) -> Decision:
    on = _fact_date(command.on, referral, ctx.today)
    referral = _replace(referral, declined_on=on)
    events: list[Event] = [Event(type="mediation.declined", on=on, actor=ctx.actor)]
    effects: list[Effect] = []
    if referral.edges and referral.current_meeting is not None:
        referral, effects, events_ = _cancel_meeting(
            referral, on, ctx.actor, cancelled_by=FAMILY, reason=MEETING_DECLINED
        )
        events += events_
    elif referral.current_meeting is not None:
        meeting = referral.current_meeting
        cancelled = meeting.model_copy(
            update={
                "status": MeetingStatus.CANCELLED,
                "cancelled_on": on,
                "cancelled_by": FAMILY,
                "cancellation_reason": "the family decided not to mediate",
            }
        )
        referral = _replace(
            referral,
            meetings=tuple(cancelled if m.id == meeting.id else m for m in referral.meetings),
        )
        effects.append(
            Notify(template="meeting_cancelled", recipients=(FAMILY, *meeting.attendees))
        )
    if referral.certificate_required and not referral.certificates:
        due = dl.certificate_due_by(on, ctx.cal)
        referral = _set(referral, dl.CERT_AFTER_DECLINE, due)
        referral, fx, ev = _issue_certificate(
            referral, CertificateKind.DECLINED_MEDIATION, due, dl.CERT_AFTER_DECLINE, ctx
        )
        effects += fx
        events += ev
        reason = "the family declined mediation; certificate issued"
    elif referral.certificates:
        reason = "the family declined mediation; the certificate was issued earlier"
    else:
        reason = "the family declined mediation; no certificate is needed to appeal"
    referral, closed = _close(referral, Outcome.DECLINED_MEDIATION, on, ctx.actor, reason)
    return Decision(referral, tuple(effects), (*events, *closed))


def _request(referral: Referral, command: RequestMediation, ctx: Context) -> Decision:
    on = _fact_date(command.on, referral, ctx.today)
    request = _mediation(referral)
    if command.issues:
        request = request.model_copy(
            update={"mediation_issues": (*request.mediation_issues, *command.issues)}
        )
    referral = _replace(referral, mediation_requested_on=on, request=request)
    health_only = request.health_only
    # DL-04 is met the day the ICB is told: the LA already did (icb_notified_on), or the
    # service does it now on the LA's behalf. Rules 2: DL-05 (health only) runs from that day.
    icb_told_on = (command.icb_notified_on or ctx.today) if referral.edges else ctx.today
    arrange_by = dl.mediation_must_be_arranged_by(
        icb_told_on if health_only and referral.edges else on
    )
    arranger = dl.ICB_ARRANGE_MEDIATION if health_only else dl.LA_ARRANGE_MEDIATION
    referral = _set(referral, arranger, arrange_by)
    events: list[Event] = [
        Event(
            type="mediation.requested",
            on=on,
            actor=ctx.actor,
            data={"arrange_by": arrange_by.isoformat()},
        )
    ]
    if referral.certificate_required:
        referral = _set(
            referral, dl.DEEMED_CERT, dl.deemed_certificate_due_by(None, arrange_by, ctx.cal)
        )
    effects: list[Effect] = []
    la = request.local_authority_contact.id or ""
    effects.append(
        Notify(
            template="mediation_requested_la",
            recipients=(la,),
            data={
                "arrange_by": arrange_by.isoformat(),
                "decision_maker_required": "true",
                **(
                    {
                        "arranger": "icb" if health_only else "la",
                        "certificate_required": str(referral.certificate_required).lower(),
                    }
                    if referral.edges
                    else {}
                ),
            },
        )
    )
    if request.health_care_in_issue:
        referral = _set(referral, dl.LA_NOTIFY_ICB, dl.la_must_notify_icb_by(on, ctx.cal))
        effects.append(
            Notify(
                template="icb_notification",
                recipients=tuple(p.id or "" for p in request.icbs),
                data={"arrange_by": arrange_by.isoformat()},
            )
        )
        # The notification goes out now, on the LA's behalf.
        referral, met = _meet(referral, dl.ICB_NOTIFIED_BY, icb_told_on)
        events += met
    invitees = tuple(p.id or "" for p in request.invitees)
    if invitees:
        effects.append(Notify(template="invitation_to_take_part", recipients=invitees))
        referral = _replace(
            referral,
            parties=tuple(
                p.model_copy(update={"asked_on": on}) if p.id in invitees else p
                for p in referral.parties
            ),
        )
    if request.supporter is not None:
        effects.append(Notify(template="supporter_welcome", recipients=("supporter",)))
    referral, changed = _status(referral, Status.ARRANGING_MEETING, on, ctx.actor)
    events.append(changed)
    return Decision(referral, tuple(effects), tuple(events))


def _record_answer(
    referral: Referral, command: PartyResponse, ctx: Context
) -> tuple[Referral, date, PartyAnswer]:
    on = _fact_date(command.on, referral, ctx.today)
    answer = PartyAnswer.ACCEPTED if command.answer is Answer.ACCEPTED else PartyAnswer.DECLINED
    referral = _replace(
        referral,
        parties=tuple(
            p.model_copy(
                update={
                    "answer": answer,
                    "answered_on": on,
                    "reason": command.reason,
                    "availability": command.availability,
                    "adjustments": command.adjustments,
                }
            )
            if p.id == command.party_id
            else p
            for p in referral.parties
        ),
    )
    return referral, on, answer


def _party_response(referral: Referral, command: PartyResponse, ctx: Context) -> Decision:
    referral, on, answer = _record_answer(referral, command, ctx)
    events: list[Event] = [
        Event(
            type="party.responded",
            on=on,
            actor=ctx.actor,
            data={"party": command.party_id, "answer": answer.value},
        )
    ]
    effects: list[Effect] = []
    if referral.status is Status.AWAITING_PARTY_RESPONSES:
        referral, fx, ev = _consent_settled(referral, ctx, on, final=False)
        effects += fx
        events += ev
    return Decision(referral, tuple(effects), tuple(events))


def _asked(referral: Referral) -> list[PartyState]:
    return [p for p in referral.parties if p.asked_on is not None]


def _consent_settled(
    referral: Referral, ctx: Context, on: date, *, final: bool
) -> tuple[Referral, list[Effect], list[Event]]:
    """DR: once every party answered (or the deadline passed), go ahead or close.

    Rules 2, when the deadline settles it (``final``): silence counts as ``no_response`` from
    the day after the window, whenever the clock gets to it; an outcome where nobody answered
    is ``no_response``, not "declined"; and the closure stays correctable for 30 days.
    """
    asked = _asked(referral)
    if not final and any(p.answer is PartyAnswer.PENDING for p in asked):
        return referral, [], []
    events: list[Event] = []
    window_end = referral.deadlines[dl.PARTY_RESPONSES_DUE_BY].due_on
    if final and referral.edges:
        on = window_end + dl.ONE_DAY
    if final:
        silent = [p.id for p in asked if p.answer is PartyAnswer.PENDING]
        dated = {"answered_on": on} if referral.edges else {}
        referral = _replace(
            referral,
            parties=tuple(
                p.model_copy(update={"answer": PartyAnswer.NO_RESPONSE, **dated})
                if p.id in silent
                else p
                for p in referral.parties
            ),
        )
        events += [
            Event(type="party.no_response", on=on, actor=SYSTEM, data={"party": pid})
            for pid in silent
        ]
        deadline = referral.deadlines[dl.PARTY_RESPONSES_DUE_BY]
        referral = _set_deadline(
            referral, dl.PARTY_RESPONSES_DUE_BY, deadline.model_copy(update={"waived": True})
        )
    else:
        referral, met = _meet(referral, dl.PARTY_RESPONSES_DUE_BY, on)
        events += met
    accepted = [p.id for p in _asked(referral) if p.answer is PartyAnswer.ACCEPTED]
    if accepted:
        referral, changed = _status(referral, Status.ARRANGING_MEETING, on, SYSTEM)
        return (
            referral,
            [Notify(template="dr_going_ahead", recipients=(FAMILY, *accepted))],
            [
                *events,
                changed,
            ],
        )
    no_one = "every party declined" if not final else "no party agreed to take part by the deadline"
    outcome = Outcome.PARTIES_DECLINED
    data: dict[str, str] = {"reason": no_one}
    if referral.edges:
        data |= appeal_position(referral)
        if final and all(p.answer is PartyAnswer.NO_RESPONSE for p in _asked(referral)):
            outcome = Outcome.NO_RESPONSE
            no_one = f"nobody answered by {window_end.isoformat()}"
            data |= {"reason": "nobody answered", "window_ended_on": window_end.isoformat()}
    if final and referral.edges:
        set_aside = (
            dl.PARTY_RESPONSES_DUE_BY,
            *(n for n, d in referral.deadlines.items() if d.open),
        )
        closure = ClockClosure(
            closed_on=on,
            window_ended_on=window_end,
            reopen_until=max(on, ctx.today) + REOPEN_WINDOW,
            waived=set_aside,
            told=(FAMILY,),
        )
        referral = _replace(referral, clock_closure=closure)
        data["reopen_until"] = closure.reopen_until.isoformat()
    referral, closed = _close(referral, outcome, on, SYSTEM, no_one)
    return (
        referral,
        [Notify(template="dr_not_going_ahead", recipients=(FAMILY,), data=data)],
        [
            *events,
            *closed,
        ],
    )


def _correct_closure(referral: Referral, command: PartyResponse, ctx: Context) -> Decision:
    """Rules 2: an answer given within the window but recorded after the clock closed the
    referral for want of answers. An acceptance reopens it where the facts put it (arranging
    the meeting), and whoever was told of the closure is told of the reopening; a refusal is
    recorded and the referral stays closed. Nothing issued is withdrawn."""
    closure = referral.clock_closure
    assert closure is not None
    referral, on, answer = _record_answer(referral, command, ctx)
    responded = Event(
        type="party.responded",
        on=on,
        actor=ctx.actor,
        data={"party": command.party_id, "answer": answer.value, "recorded_late": True},
    )
    if answer is PartyAnswer.DECLINED:
        if referral.outcome is Outcome.NO_RESPONSE:
            changed = Event(
                type="referral.outcome_corrected",
                on=ctx.today,
                actor=ctx.actor,
                data={"from": Outcome.NO_RESPONSE.value, "to": Outcome.PARTIES_DECLINED.value},
            )
            referral = _replace(referral, outcome=Outcome.PARTIES_DECLINED)
            return Decision(referral, (), (responded, changed))
        return Decision(referral, (), (responded,))
    deadlines = dict(referral.deadlines)
    for name in closure.waived:
        deadline = deadlines.get(name)
        if deadline is None:
            continue
        restored: dict[str, Any] = {"waived": False}
        if name == dl.PARTY_RESPONSES_DUE_BY:
            restored |= {"met_on": on, "breached": False}  # an answer came within the window
        deadlines[name] = deadline.model_copy(update=restored)
    previous = referral.outcome
    referral = _replace(
        referral,
        deadlines=deadlines,
        outcome=None,
        closed_on=None,
        closure_reason=None,
        clock_closure=None,
    )
    reopened = Event(
        type="referral.reopened",
        on=ctx.today,
        actor=ctx.actor,
        data={
            "reason": "answer_recorded_late",
            "party": command.party_id,
            "answered_on": on.isoformat(),
            "closed_on": closure.closed_on.isoformat(),
            "from_outcome": previous.value if previous else None,
        },
    )
    referral, changed = _status(referral, Status.ARRANGING_MEETING, ctx.today, ctx.actor)
    accepted = tuple(p.id for p in _asked(referral) if p.answer is PartyAnswer.ACCEPTED)
    effects: list[Effect] = [
        Notify(
            template="referral_reopened",
            recipients=closure.told,
            data={
                "closed_on": closure.closed_on.isoformat(),
                "answered_on": on.isoformat(),
                "window_ended_on": closure.window_ended_on.isoformat(),
            },
        ),
        Notify(template="dr_going_ahead", recipients=accepted),
    ]
    return Decision(referral, tuple(effects), (responded, reopened, changed))


def _book(
    referral: Referral,
    command: BookMeeting,
    ctx: Context,
    mediator: MediatorSummary,
    venue: Venue,
) -> Decision:
    notice_on = command.notice_given_on or ctx.today
    meeting_day = london_date(command.starts_at)
    consented = short_notice_consented(referral, command)
    notice = dl.latest_notice_dates(meeting_day, ctx.cal)
    attendees = command.attendees if command.attendees is not None else _taking_part(referral)
    meeting = Meeting(
        id=f"meeting-{len(referral.meetings) + 1}",
        mediator=mediator,
        starts_at=command.starts_at,
        ends_at=command.ends_at,
        venue=venue,
        notice_given_on=notice_on,
        short_notice_consented=consented and notice_on > notice.safest,
        attendees=tuple(a for a in attendees if a != FAMILY),
    )
    referral = _replace(referral, meetings=(*referral.meetings, meeting))
    referral = _set(
        referral,
        dl.MEDIATION_NOTICE,
        notice.safest,
        met_on=notice_on,
        breached=False,
        waived=notice_on > notice.safest,  # consented shorter notice
    )
    referral, changed = _status(referral, Status.MEETING_BOOKED, ctx.today, ctx.actor)
    event = Event(
        type="meeting.booked",
        on=ctx.today,
        actor=ctx.actor,
        data={
            "meeting": meeting.id,
            "mediator": mediator.id,
            "starts_at": meeting.starts_at.isoformat(),
            "venue": venue.kind.value,
            "short_notice_consented": meeting.short_notice_consented,
        },
    )
    dispatch = DispatchInvitation(meeting, docs.invitation_recipients(referral, meeting))
    return Decision(referral, (dispatch,), (event, changed))


def _record(referral: Referral, command: RecordMeeting, ctx: Context) -> Decision:
    held_on = _fact_date(command.held_on, referral, ctx.today, "held_on")
    meeting = referral.current_meeting
    assert meeting is not None
    held = meeting.model_copy(
        update={"status": MeetingStatus.HELD, "held_on": held_on, "outcome": command.outcome}
    )
    referral = _replace(
        referral, meetings=tuple(held if m.id == meeting.id else m for m in referral.meetings)
    )
    events: list[Event] = [
        Event(
            type="meeting.held",
            on=held_on,
            actor=ctx.actor,
            data={
                "meeting": meeting.id,
                "outcome": command.outcome.value,
                "settled": len(command.settled_issues),
                "open": len(command.open_issues),
            },
        )
    ]
    effects: list[Effect] = []
    referral, met = _meet(referral, dl.MEDIATION_ARRANGED_BY, held_on)
    events += met
    deemed = referral.deadlines.get(dl.DEEMED_CERTIFICATE_DUE_BY)
    if deemed is not None and deemed.open:
        referral = _set_deadline(
            referral, dl.DEEMED_CERTIFICATE_DUE_BY, deemed.model_copy(update={"waived": True})
        )
    # DL-07: a certificate after the mediation; rules 2 (A16): after every concluded
    # mediation, full agreement included (an agreement does not remove the right of appeal).
    if (
        referral.route is Route.MEDIATION
        and referral.certificate_required
        and (command.outcome is not MeetingOutcome.AGREEMENT or referral.edges)
    ):
        due = dl.certificate_due_by(held_on, ctx.cal)
        referral = _set(referral, dl.CERT_AFTER_MEDIATION, due)
        referral, fx, ev = _issue_certificate(
            referral, CertificateKind.AFTER_MEDIATION, due, dl.CERT_AFTER_MEDIATION, ctx
        )
        effects += fx
        events += ev
    if command.outcome is MeetingOutcome.NO_AGREEMENT:
        referral, closed = _close(
            referral, Outcome.NO_AGREEMENT, held_on, ctx.actor, "no agreement was reached"
        )
        return Decision(referral, tuple(effects), (*events, *closed))
    actions = []
    for n, draft in enumerate(command.agreed_actions, start=1):
        actions.append(
            AgreedAction(
                id=draft.id or f"action-{n}",
                description=draft.description,
                owner=draft.owner,
                kind=draft.kind,
                due_on=draft.due_on,
            )
        )
    agreement = Agreement(
        recorded_on=held_on,
        settled_issues=command.settled_issues,
        open_issues=command.open_issues,
        actions=tuple(actions),
    )
    referral = _replace(referral, agreement=agreement)
    referral, changed = _status(referral, Status.AGREEMENT_AWAITING_SIGNATURE, held_on, ctx.actor)
    return Decision(referral, tuple(effects), (*events, changed))


ACTION_PERIOD: Mapping[ActionKind, Callable[[date], date]] = {
    ActionKind.NON_APPEALABLE: dl.non_appealable_action_due_by,
    ActionKind.ICB_NOTIFY_LA: dl.icb_notify_la_due_by,
    ActionKind.CEASE_PLAN: dl.continue_to_maintain_or_cease_effective,
    ActionKind.CONTINUE_TO_MAINTAIN: dl.continue_to_maintain_or_cease_effective,
    ActionKind.ASSESS_NOTIFY: dl.assessment_notify_parent_by,
    ActionKind.ASSESS_NOT_NECESSARY: dl.assessment_not_necessary_notice_by,
    ActionKind.ASSESS_FINAL_PLAN: dl.assessment_final_plan_by,
    ActionKind.MAKE_PLAN_DRAFT: dl.make_plan_draft_by,
    ActionKind.MAKE_PLAN_FINAL: dl.make_plan_final_by,
    ActionKind.RECONSIDER: dl.reconsider_by,
    ActionKind.AMEND_PLAN: dl.amend_plan_issue_by,
    ActionKind.AMEND_SCHOOL: dl.amend_school_name_or_type_issue_by,
}


def action_due_on(kind: ActionKind, agreed_due: date | None, signed_on: date) -> date:
    """The deadline of an agreed action, counted from the agreement's date (reg 42)."""
    if kind is ActionKind.AGREED_DATE:
        assert agreed_due is not None
        return agreed_due
    return ACTION_PERIOD[kind](signed_on)


def _sign(referral: Referral, command: SignAgreement, ctx: Context) -> Decision:
    on = _fact_date(command.on, referral, ctx.today)
    agreement = referral.agreement
    assert agreement is not None
    if on < agreement.recorded_on:
        raise InvalidCommand("on: before the meeting was held", field="on")
    actions = tuple(
        a.model_copy(update={"due_on": action_due_on(a.kind, a.due_on, on)})
        for a in agreement.actions
    )
    agreement = agreement.model_copy(
        update={"signed_on": on, "signatories": command.signatories, "actions": actions}
    )
    referral = _replace(referral, agreement=agreement)
    referral, changed = _status(referral, Status.TRACKING_ACTIONS, on, ctx.actor)
    event = Event(
        type="agreement.signed",
        on=on,
        actor=ctx.actor,
        data={
            "actions": {a.id: a.due_on.isoformat() if a.due_on else None for a in actions},
        },
    )
    dispatch = DispatchAgreement(agreement, docs.agreement_recipients(agreement))
    return Decision(referral, (dispatch,), (event, changed))


def record_document(referral: Referral, document: DocumentRef, today: date) -> Decision:
    """A dispatched document, and any recipient it could not reach (visible, escalated)."""
    if any(d.number == document.number for d in referral.documents):
        return Decision(referral)
    referral = _replace(
        referral, documents=(*referral.documents, document), version=referral.version + 1
    )
    events = [
        Event(
            type="document.dispatched",
            on=today,
            actor=SYSTEM,
            data={"number": document.number, "kind": document.kind, "sha256": document.sha256},
        )
    ]
    events += [
        Event(
            type="delivery.failed",
            on=today,
            actor=SYSTEM,
            data={"number": document.number, "recipient": recipient},
        )
        for recipient in document.failed
    ]
    return Decision(referral, (), tuple(events))


# ---------------------------------------------------------------------------- endings


def _finalise_closure(referral: Referral, ctx: Context, *, now: bool = False) -> Decision:
    """Rules 2: once the correction window of a closure by the clock has passed (or ``now``),
    it is final."""
    closure = referral.clock_closure
    if not referral.edges or closure is None or closure.final:
        return Decision(referral)
    if ctx.today <= closure.reopen_until and not now:
        return Decision(referral)
    referral = _replace(
        referral,
        clock_closure=closure.model_copy(update={"final": True}),
        version=referral.version + 1,
    )
    event = Event(
        type="referral.closure_final",
        on=ctx.today,
        actor=SYSTEM,
        data={"closed_on": closure.closed_on.isoformat()},
    )
    return Decision(referral, (), (event,))


def cancel_by_operator(referral: Referral, ctx: Context) -> Decision:
    """Rules 2: an operator asked Temporal to cancel the case (the Web UI's "Request
    Cancellation"). It closes as ``cancelled``, with everything live released as at any other
    ending, everyone told, and the family told what it means for their right of appeal."""
    if finished(referral) or referral.status is Status.STOPPED:
        return Decision(referral)
    if referral.closed:  # closed by the clock and still correctable: make it final now
        return _finalise_closure(referral, ctx, now=True)
    today = ctx.today
    referral = _replace(referral, version=referral.version + 1)
    cancelled = Event(type="referral.cancelled", on=today, actor=ctx.actor, data={"by": "operator"})
    referral, effects, closed = _end(
        referral,
        Outcome.CANCELLED,
        today,
        ctx.actor,
        "an operator cancelled the case in the Temporal Web UI",
        meeting_reason=MEETING_OPERATOR,
        cancelled_by="provider",
    )
    notify = Notify(
        template="referral_cancelled",
        recipients=_everyone(referral),
        data=appeal_position(referral),
    )
    return Decision(referral, (*effects, notify), (cancelled, *closed))
