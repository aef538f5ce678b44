"""What the API returns: ``ReferralRead`` and friends, built from the domain ``Referral``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.domain import transitions as tr
from models.domain.referral import (
    Agreement,
    Certificate,
    CertificateKind,
    DisagreementResolutionReferralCreate,
    DocumentRef,
    MediationReferralCreate,
    Meeting,
    Notice,
    Outcome,
    PartyAnswer,
    PartyKind,
    Referral,
    Route,
    Status,
)
from models.domain.summary import any_breach, next_due
from models.store.document_tables import DeliveryRow


class Read(BaseModel):
    model_config = ConfigDict(frozen=True)


class DeadlineRead(Read):
    rule: str = Field(description="RULES.md id, e.g. DL-03.")
    description: str
    responsible: str
    due_on: date
    state: Literal["open", "met", "breached", "not_applicable"]
    met_on: date | None = None
    breached: bool = False


class CertificateRead(Read):
    number: str
    kind: CertificateKind
    issued_on: date
    due_on: date
    on_time: bool
    appeal_deadline: date | None
    section_i_note: str | None = None


class PartyRead(Read):
    id: str
    kind: PartyKind
    organisation: str
    role: str | None
    answer: PartyAnswer = Field(
        description="required (LA/ICB in Mediation: cannot decline), pending, accepted, "
        "declined, no_response (silent past the response deadline)."
    )
    answered_on: date | None = None
    reason: str | None = None
    asked_on: date | None = None
    reminded_on: date | None = None


class NextDeadline(Read):
    name: str
    due_on: date


class ReferralRead(Read):
    id: str
    route: Route
    status: Status
    version: int = Field(description="Increases with every change.")
    local_authority: str
    external_reference: str | None = Field(
        description="The council's own case reference given at intake, if any."
    )
    received_on: date
    created_at: datetime
    certificate_required: bool = Field(
        description="Whether a mediation certificate is needed to appeal. Never on "
        "Disagreement Resolution; not for a Section I-only dispute."
    )
    certificate_policy: str = Field(description="The certificate rule for this referral, in words.")
    notices: list[Notice]
    deadlines: dict[str, DeadlineRead]
    next_deadline: NextDeadline | None
    breached: bool
    certificate: CertificateRead | None = Field(description="The first certificate, if any.")
    certificates: list[CertificateRead]
    appeal_deadline: date | None = Field(
        description="DL-09: last day to appeal to the Tribunal (by 17:00), from the first "
        "certificate; on the facts so far until one is issued."
    )
    parties: list[PartyRead]
    meetings: list[Meeting]
    agreement: Agreement | None
    documents: list[DocumentRef] = Field(
        description="Documents issued (numbers, hashes) and recipients not reached; "
        "details and deliveries at /v1/referrals/{id}/documents."
    )
    actioned_on: date | None
    information_session_on: date | None
    mediation_requested_on: date | None
    declined_on: date | None
    withdrawn_on: date | None
    closed_on: date | None
    outcome: Outcome | None = Field(
        description="Why it closed. `no_response`: Disagreement Resolution where nobody "
        "answered within the response window (not a refusal); `cancelled`: an operator "
        "cancelled the case in the Temporal Web UI."
    )
    closure_reason: str | None
    parties_contacted_on: date | None = Field(
        default=None,
        description="Disagreement Resolution: the day the parties were asked. Their response "
        "window (and its reminder) counts from this day, not from received_on.",
    )
    closure_correctable_until: date | None = Field(
        default=None,
        description="Closed by the clock alone (nobody answered in time): until this day an "
        "answer given within the window can still be recorded (`party-response` with its "
        "`on` date), which reopens the referral.",
    )
    stopped_on: date | None = Field(
        default=None,
        description="Status `stopped`: the day the reconciler found its workflow terminated, "
        "failed or timed out with the case open. Nothing more happens by itself.",
    )
    allowed_commands: list[str] = Field(description="Commands legal now (path segments).")
    details: MediationReferralCreate | DisagreementResolutionReferralCreate = Field(
        description="What was referred (personal data)."
    )


def _deadline_state(
    rule_open: bool, met_on: date | None, breached: bool
) -> Literal["open", "met", "breached", "not_applicable"]:
    if breached:
        return "breached"
    if met_on is not None:
        return "met"
    return "open" if rule_open else "not_applicable"


def _certificate(c: Certificate) -> CertificateRead:
    return CertificateRead(
        number=c.number,
        kind=c.kind,
        issued_on=c.issued_on,
        due_on=c.due_on,
        on_time=c.on_time,
        appeal_deadline=c.appeal_deadline,
        section_i_note=c.section_i_note,
    )


def certificate_policy(referral: Referral) -> str:
    if referral.route is Route.DISAGREEMENT_RESOLUTION:
        return (
            "Disagreement Resolution never issues a mediation certificate; it does not affect "
            "any right of appeal."
        )
    if referral.certificate_required and referral.edges:
        return (
            "A mediation certificate is issued within 3 working days when the family declines "
            "mediation or after every mediation meeting, full agreement included, and "
            "automatically when no meeting has been held within 30 days of the LA being told."
        )
    if referral.certificate_required:
        return (
            "A mediation certificate is issued within 3 working days when the family declines "
            "mediation or after a meeting that leaves issues unresolved, and automatically when "
            "no meeting has been held within 30 days of the LA being told."
        )
    return "No mediation certificate is needed to appeal this dispute."


def referral_read(referral: Referral) -> ReferralRead:
    due = next_due(referral)
    return ReferralRead(
        id=referral.id,
        route=referral.route,
        status=referral.status,
        version=referral.version,
        local_authority=referral.local_authority,
        external_reference=referral.request.external_reference,
        received_on=referral.received_on,
        created_at=referral.created_at,
        certificate_required=referral.certificate_required,
        certificate_policy=certificate_policy(referral),
        notices=list(referral.notices),
        deadlines={
            name: DeadlineRead(
                rule=d.rule,
                description=d.description,
                responsible=d.responsible,
                due_on=d.due_on,
                state=_deadline_state(not d.waived, d.met_on, d.breached),
                met_on=d.met_on,
                breached=d.breached,
            )
            for name, d in sorted(referral.deadlines.items(), key=lambda kv: kv[1].due_on)
        },
        next_deadline=NextDeadline(name=due[0], due_on=due[1]) if due else None,
        breached=any_breach(referral),
        certificate=_certificate(referral.certificates[0]) if referral.certificates else None,
        certificates=[_certificate(c) for c in referral.certificates],
        appeal_deadline=referral.appeal_deadline,
        parties=[
            PartyRead(
                id=p.id,
                kind=p.party.kind,
                organisation=p.party.organisation,
                role=p.party.role,
                answer=p.answer,
                answered_on=p.answered_on,
                reason=p.reason,
                asked_on=p.asked_on,
                reminded_on=p.reminded_on,
            )
            for p in referral.parties
        ],
        meetings=list(referral.meetings),
        agreement=referral.agreement,
        documents=list(referral.documents),
        actioned_on=referral.actioned_on,
        information_session_on=referral.information_session_on,
        mediation_requested_on=referral.mediation_requested_on,
        declined_on=referral.declined_on,
        withdrawn_on=referral.withdrawn_on,
        closed_on=referral.closed_on,
        outcome=referral.outcome,
        closure_reason=referral.closure_reason,
        parties_contacted_on=referral.parties_contacted_on,
        closure_correctable_until=(
            referral.clock_closure.reopen_until
            if referral.clock_closure is not None and not referral.clock_closure.final
            else None
        ),
        stopped_on=referral.stopped_on,
        allowed_commands=[c.replace("_", "-") for c in tr.allowed_commands(referral)],
        details=referral.request,
    )


# --------------------------------------------------------------------------- listing, timeline


class CertificateBrief(Read):
    kind: CertificateKind
    issued_on: date


class ReferralSummary(Read):
    """A referral in a list: codes and dates only, never personal data."""

    id: str
    route: Route
    status: Status
    local_authority: str
    external_reference: str | None = Field(
        description="The council's own case reference given at intake, if any."
    )
    next_deadline: NextDeadline | None = Field(
        description="The earliest open deadline (agreed actions included); null when none."
    )
    breached: bool = Field(description="Any deadline or agreed action breached.")
    certificate: CertificateBrief | None = Field(description="The first certificate, if any.")
    appeal_deadline: date | None
    outcome: Outcome | None
    created_at: datetime
    updated_at: datetime


class ReferralPage(Read):
    items: list[ReferralSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters and sort) for the next page; "
        "null on the last page."
    )


class EventRead(Read):
    seq: int = Field(description="1, 2, 3…: the order in which things happened to the referral.")
    type: str = Field(description="e.g. referral.created, mediation.requested, certificate.issued.")
    occurred_on: date = Field(description="The date of the fact (Europe/London).")
    recorded_at: datetime = Field(description="When the service recorded it.")
    actor: str = Field(
        description="The id of the API key that sent the command (the client's identity), "
        "or `system`."
    )
    actor_type: Literal["api_client", "system", "party"] = Field(
        description="`system` for what the service did by itself (timers, certificates); "
        "`party` for an answer given through a personal link in an email (`actor` is "
        "`family`, `supporter` or `party:<party id>`)."
    )
    actor_name: str | None = Field(
        default=None, description="That API key's client name, for reading (not unique)."
    )
    data: dict[str, Any] = Field(description="What changed: ids, codes and dates only.")


class EventPage(Read):
    referral_id: str
    items: list[EventRead]
    next_after: int | None = Field(
        description="Pass as `after` for the next events; null when there are no more."
    )


# --------------------------------------------------------------------------- deliveries


class DeliveryRead(Read):
    recipient: str = Field(
        description="family, supporter, mediator, provider, a party id, or the webhook "
        "subscription's id."
    )
    channel: str = Field(description="email, webhook, post, phone or none.")
    status: str = Field(
        description="pending, sending, sent, failed (permanent: the provider was told), manual "
        "(prefers post or phone, or no contact details: send by hand) or cancelled."
    )
    purpose: str = Field(description="document, notification, event or escalation.")
    document_number: str | None = None
    event_type: str | None = None
    template: str | None = None
    attempts: int
    detail: str | None = Field(default=None, description="Why it failed; no personal data.")
    message_id: str = Field(description="Message-ID (email) or webhook-id: stable per send.")
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None


def delivery_read(row: DeliveryRow) -> DeliveryRead:
    return DeliveryRead(
        recipient=row.recipient,
        channel=row.channel,
        status=row.status,
        purpose=row.purpose,
        document_number=row.document_number,
        event_type=row.event_type,
        template=row.template,
        attempts=row.attempts,
        # A webhook's reason (an HTTP status, "unreachable") would tell a caller which
        # internal ports answer: callers see only whether it was delivered or failed.
        detail=None if row.channel == "webhook" else row.detail,
        message_id=row.message_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        sent_at=row.sent_at,
    )
