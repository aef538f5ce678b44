"""Tables for issued documents, their deliveries and webhook subscriptions.

- ``document``: every certificate, agreement and invitation issued, with the exact bytes sent
  (so they can be served again) and their SHA-256. Keyed by the document's number.
- ``document_copy``: a recipient's own copy where readers get different text (the invitation:
  adjustments and supporter only for the family and the mediator), with its SHA-256.
- ``delivery``: the dispatch ledger. One row per (thing sent, recipient), keyed by a stable
  key, so a retried activity, a replayed workflow or a restarted worker finds the row and
  never sends twice. States: pending → sending → sent | failed; ``manual`` for recipients
  who prefer post or phone; ``cancelled`` when a webhook subscription was disabled first.
- ``webhook_subscription``: back-office endpoints, their signing secret (sealed with the codec
  key, ``models/adapters/secrets.py``) and event filter.
- ``webhook_subscriber_health``: deliveries in a row that failed for good per subscription;
  a subscriber that keeps failing is disabled (``disabled_reason``) and its provider told.

Written only by activities (documents, deliveries) and by the webhook-subscription routes
(subscriptions are configuration, not case data).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import JSON, Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from models.store.tables import UTCDateTime

PENDING: Final = "pending"
SENDING: Final = "sending"
SENT: Final = "sent"
FAILED: Final = "failed"
MANUAL: Final = "manual"
CANCELLED: Final = "cancelled"
DELIVERY_STATES: Final = (PENDING, SENDING, SENT, FAILED, MANUAL, CANCELLED)


def _instant(*, nullable: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    return Field(sa_column=Column(UTCDateTime(), nullable=False))


class DocumentRow(SQLModel, table=True):
    """One issued document: its number, what it is, and the exact bytes sent."""

    __tablename__ = "document"
    __table_args__ = (Index("ix_document_referral", "referral_id", "issued_on"),)

    number: str = Field(primary_key=True, max_length=64)
    referral_id: str = Field(max_length=64)
    local_authority: str = Field(max_length=64)
    kind: str = Field(max_length=32, description="certificate, agreement or invitation")
    variant: str | None = Field(
        default=None, max_length=32, description="The certificate's kind (e.g. deemed)."
    )
    meeting_id: str | None = Field(default=None, max_length=64)
    issued_on: date
    issuer: str = Field(max_length=200, description="The provider that issued it.")
    sha256: str = Field(max_length=64, index=True)
    size: int
    media_type: str = Field(default="application/pdf", max_length=64)
    filename: str = Field(max_length=128)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    calendar: bytes | None = Field(
        default=None,
        sa_column=Column(LargeBinary, nullable=True),
        description="The invitation's iCalendar (.ics) attachment, stored like the PDF.",
    )
    request_key: str = Field(max_length=255, description="The workflow effect that issued it.")
    created_at: datetime = _instant()


class DocumentCopyRow(SQLModel, table=True):
    """One recipient's own rendering of a document (each reader gets only what is theirs): the
    exact bytes sent to that recipient, stored the first time, so a retry sends them again."""

    __tablename__ = "document_copy"

    number: str = Field(primary_key=True, max_length=64)
    recipient: str = Field(primary_key=True, max_length=64)
    sha256: str = Field(max_length=64, index=True)
    size: int
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _instant()


class DeliveryRow(SQLModel, table=True):
    """One thing sent to one recipient, once (key = what + recipient, stable across retries)."""

    __tablename__ = "delivery"
    __table_args__ = (
        Index("ix_delivery_referral", "referral_id", "created_at"),
        Index("ix_delivery_status", "status", "updated_at"),
    )

    key: str = Field(primary_key=True, max_length=255)
    referral_id: str = Field(max_length=64)
    purpose: str = Field(max_length=16, description="document, notification, event, escalation")
    document_number: str | None = Field(default=None, max_length=64, index=True)
    event_type: str | None = Field(default=None, max_length=64)
    template: str | None = Field(default=None, max_length=64)
    recipient: str = Field(
        max_length=128,
        description="family, supporter, mediator, a party id, provider, or "
        "the webhook subscription's id",
    )
    channel: str = Field(max_length=16, description="email, webhook, post, phone or none")
    subscription_id: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(max_length=16)
    attempts: int = 0
    message_id: str = Field(max_length=255, description="Message-ID or webhook-id: stable.")
    detail: str | None = Field(default=None, max_length=500, description="No personal data.")
    payload: dict[str, Any] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="The webhook body (no personal data), fixed at first attempt.",
    )
    claim_token: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _instant(nullable=True)
    created_at: datetime = _instant()
    updated_at: datetime = _instant()
    sent_at: datetime | None = _instant(nullable=True)


class WebhookSubscriptionRow(SQLModel, table=True):
    """A back-office endpoint: which events, which council (or all), signed with its secret."""

    __tablename__ = "webhook_subscription"

    id: str = Field(primary_key=True, max_length=64)
    url: str = Field(max_length=2000)
    secret: str = Field(
        max_length=128, description="whsec_…, sealed with the codec key; shown once, on creation."
    )
    event_types: list[str] = Field(sa_column=Column(JSON, nullable=False))
    local_authority: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=200)
    client_id: str = Field(max_length=128)
    active: bool = True
    created_at: datetime = _instant()
    disabled_at: datetime | None = _instant(nullable=True)


class WebhookSubscriberHealthRow(SQLModel, table=True):
    """How a subscription's deliveries have gone lately: failures in a row, and why it was
    disabled by the service (``None`` while it is healthy or was disabled by its owner)."""

    __tablename__ = "webhook_subscriber_health"

    subscription_id: str = Field(primary_key=True, max_length=64)
    consecutive_failures: int = 0
    last_failure_at: datetime | None = _instant(nullable=True)
    disabled_reason: str | None = Field(default=None, max_length=200)
