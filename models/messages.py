"""Every payload that crosses Temporal: workflow inputs and results, update envelopes,
activity arguments and results, the error types the API reads, and the webhook event types.

Pure (stdlib, pydantic and ``models.domain``): the workflow imports this module through the
sandbox's pass-through without loading the database, mail, PDF or webhook libraries, and so
does the API. Payloads carry no class or module path (``json/plain``), so a class can move
here without touching a recorded history; field names and values never change.

Imported through the sandbox (``imports_passed_through``): the workflow module is executed
afresh for every new workflow instance, and building these pydantic models (the input embeds
the whole referral request schema) there cost about 6 % of the worker's CPU under load
(docs/PERFORMANCE.md). No clock, environment or I/O.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from models.domain import transitions as tr
from models.domain.commands import Command
from models.domain.referral import (
    DisagreementResolutionReferralCreate,
    MediationReferralCreate,
    MediatorSummary,
    Referral,
    Venue,
    VenueKind,
)

# --------------------------------------------------------------------------- names
# Every name Temporal records (in a history, a schedule or a visibility query), written once
# and used by both ends: the workflow and its activities, the workflow and the API. Never
# rename one: running referrals and recorded histories carry them. (Search attributes:
# ``workflows/search_attributes.py``; patch ids: ``workflows/referral.py``.)

TASK_QUEUE: Final = "send-referrals"

REFERRAL_WORKFLOW: Final = "ReferralWorkflow"
RETENTION_WORKFLOW: Final = "RetentionWorkflow"
RECONCILE_WORKFLOW: Final = "ReconcileWorkflow"

WORKFLOW_ID_PREFIX: Final = "referral-"


def workflow_id(referral_id: str) -> str:
    """Workflow id of a referral. Ids are random UUIDs: never personal data."""
    return f"{WORKFLOW_ID_PREFIX}{referral_id}"


def referral_id_from_workflow_id(wf_id: str) -> str:
    return wf_id.removeprefix(WORKFLOW_ID_PREFIX)


#: The referral workflow's query: the referral as it stands.
REFERRAL_QUERY: Final = "referral"

#: The referral workflow's updates: ``created`` is sent with the start (update-with-start);
#: every command has its own, named by the command's ``command`` tag.
CREATED_UPDATE: Final = "created"
ACTION_UPDATE: Final = "action"
INFORMATION_SESSION_UPDATE: Final = "information_session"
DECLINE_MEDIATION_UPDATE: Final = "decline_mediation"
REQUEST_MEDIATION_UPDATE: Final = "request_mediation"
LA_UNABLE_TO_ARRANGE_UPDATE: Final = "la_unable_to_arrange"
PARTY_RESPONSE_UPDATE: Final = "party_response"
BOOK_MEETING_UPDATE: Final = "book_meeting"
CANCEL_MEETING_UPDATE: Final = "cancel_meeting"
RECORD_MEETING_UPDATE: Final = "record_meeting"
SIGN_AGREEMENT_UPDATE: Final = "sign_agreement"
COMPLETE_ACTION_UPDATE: Final = "complete_action"
WITHDRAW_UPDATE: Final = "withdraw"
MEETING_REPLY_UPDATE: Final = "meeting_reply"

#: Activities (``@activity.defn(name=…)`` and ``workflow.execute_activity(…)``).
LOAD_BANK_HOLIDAYS: Final = "load_bank_holidays"
RECORD_REFERRAL: Final = "record_referral"
# perf-v1: the projection as a local activity that also sends the new events' webhooks.
PROJECT_REFERRAL: Final = "project_referral"
SEND_NOTIFICATION: Final = "send_notification"
PUBLISH_EVENTS: Final = "publish_events"
DISPATCH_DOCUMENT: Final = "dispatch_document"
VET_AND_RESERVE_BOOKING: Final = "vet_and_reserve_booking"
RELEASE_RESERVATION: Final = "release_reservation"
CANCELLATION_REQUESTED_BY: Final = "cancellation_requested_by"
RECONCILE_STOPPED_REFERRALS: Final = "reconcile_stopped_referrals"
ERASE_EXPIRED_REFERRALS: Final = "erase_expired_referrals"


class StartReferral(BaseModel):
    """Workflow input. ``request`` holds personal data: encrypted by the payload codec."""

    model_config = ConfigDict(frozen=True)

    referral_id: str
    request: MediationReferralCreate | DisagreementResolutionReferralCreate = Field(
        discriminator="route"
    )
    received_on: date
    created_at: datetime
    actor: str
    request_hash: str
    policy: tr.Policy = tr.Policy()
    local_authority_name: str | None = Field(
        default=None, description="The council's name from the registry, for the Web UI."
    )


class CommandEnvelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    actor: str
    command: Command


class Created(BaseModel):
    """Sent with the start (update-with-start): answers once the referral is projected."""

    model_config = ConfigDict(frozen=True)

    request_hash: str


class Closed(BaseModel):
    model_config = ConfigDict(frozen=True)

    referral_id: str
    outcome: str | None
    closed_on: date | None


# --------------------------------------------------------------------------- failures
# The types of the errors the workflow answers an update with (the API reads them).


ILLEGAL = "IllegalTransition"
INVALID = "InvalidCommand"
IDEMPOTENCY_MISMATCH = "IdempotencyMismatch"
UNAVAILABLE = "Unavailable"


# --------------------------------------------------------------------------- retention


class RetentionRun(BaseModel):
    model_config = ConfigDict(frozen=True)

    batch: int = 100
    max_batches: int = 100


class RetentionSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    erased: int
    idempotency_records_deleted: int


class RetentionRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    today: date
    batch: int = 100


class RetentionResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    erased: int
    more: bool
    idempotency_records_deleted: int = 0


# --------------------------------------------------------------------------- reconciler


class ReconcileRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    today: date


class ReconcileResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    checked: int
    stopped: tuple[str, ...]


class CancellationQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    workflow_id: str
    run_id: str | None = None


# --------------------------------------------------------------------------- activities


class HolidayRange(BaseModel):
    model_config = ConfigDict(frozen=True)

    first_year: int
    last_year: int


class EventRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int
    type: str
    on: date
    at: datetime
    actor: str
    data: dict[str, Any]


class Projection(BaseModel):
    model_config = ConfigDict(frozen=True)

    referral: Referral
    events: tuple[EventRecord, ...] = ()
    at: datetime
    # ``project_referral`` only: the seqs of ``events`` that subscribed back offices receive.
    publish: tuple[int, ...] = ()


class Projected(BaseModel):
    """What ``project_referral`` could not deliver at once: handed to ``publish_events``."""

    model_config = ConfigDict(frozen=True)

    unsent: tuple[int, ...] = ()


BOOKING_REJECTED = "BookingRejected"


class BookingRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    referral_id: str
    meeting_id: str
    local_authority: str
    organisations: tuple[str, ...]
    mediator_id: str
    venue_kind: VenueKind
    venue_id: str | None = None
    video_link: str | None = None
    starts_at: datetime
    ends_at: datetime


class BookingVetted(BaseModel):
    model_config = ConfigDict(frozen=True)

    mediator: MediatorSummary
    venue: Venue


class Release(BaseModel):
    model_config = ConfigDict(frozen=True)

    referral_id: str
    meeting_id: str


class NotificationRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    referral_id: str
    template: str
    recipients: tuple[str, ...]
    data: dict[str, str] = {}


class PublishRequest(BaseModel):
    """Referral events as projected (``seq`` makes each webhook's id stable)."""

    model_config = ConfigDict(frozen=True)

    referral_id: str
    events: tuple[EventRecord, ...]


class DocumentRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str  # stable per effect: "<workflow_id>:effect-<n>"
    referral_id: str
    kind: Literal["certificate", "agreement", "invitation"]
    number: str  # the document number (for certificates: Certificate.number)
    meeting_id: str | None = None  # for invitations: which Meeting in referral.meetings
    recipients: tuple[str, ...]  # "family", "supporter", "mediator", or party ids


class DeliveryOutcome(BaseModel):
    """What happened to one delivery (a recipient by email, or a webhook subscription)."""

    model_config = ConfigDict(frozen=True)

    recipient: str
    channel: str  # email, webhook, post, phone or none
    status: Literal["sent", "failed", "manual"]
    detail: str | None = None


class DispatchReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: str
    kind: str
    sha256: str
    issued_on: date
    deliveries: tuple[DeliveryOutcome, ...]


# --------------------------------------------------------------------------- webhook events


DOCUMENT_EVENTS: Final[dict[str, str]] = {
    "certificate": "certificate.issued",
    "agreement": "agreement.signed",
    "invitation": "meeting.booked",
}


#: Status events every referral publishes as webhooks (publish_events).
STATUS_EVENTS_ALWAYS: Final[tuple[str, ...]] = (
    "referral.created",
    "referral.status_changed",
    "referral.closed",
    "deadline.breached",
)
#: And those a referral under the lifecycle-edge rules (``Referral.rules`` 2) publishes too.
STATUS_EVENTS_EDGES: Final[tuple[str, ...]] = (
    "deadline.met",  # only when it corrects an earlier deadline.breached (corrected: true)
    "meeting.cancelled",  # by cancel-meeting, or because the referral ended
    "referral.reopened",  # a closure by the clock corrected by a fact dated in time
)
STATUS_EVENTS: Final[tuple[str, ...]] = (*STATUS_EVENTS_ALWAYS, *STATUS_EVENTS_EDGES)


EVENT_TYPES: Final[tuple[str, ...]] = (*DOCUMENT_EVENTS.values(), *STATUS_EVENTS)


EventType = Literal[
    "certificate.issued",
    "agreement.signed",
    "meeting.booked",
    "referral.created",
    "referral.status_changed",
    "referral.closed",
    "deadline.breached",
    "deadline.met",
    "meeting.cancelled",
    "referral.reopened",
]
assert get_args(EventType) == EVENT_TYPES


# The only event data forwarded, per type: codes and dates, never free text.
STATUS_EVENT_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "referral.created": ("route", "status"),
    "referral.status_changed": ("from", "to"),
    "referral.closed": ("outcome",),
    "deadline.breached": ("deadline", "rule"),
    "deadline.met": ("deadline", "rule", "due_on", "met_on", "corrected"),
    "meeting.cancelled": ("meeting", "cancelled_by", "reason"),
    "referral.reopened": ("reason", "party", "answered_on", "closed_on", "from_outcome"),
}


def is_status_event(event: EventRecord) -> bool:
    """A status event for webhooks: ``deadline.met`` only when it corrects a breach."""
    if event.type not in STATUS_EVENT_FIELDS:
        return False
    return event.type != "deadline.met" or bool(event.data.get("corrected"))
