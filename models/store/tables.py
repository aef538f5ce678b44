"""SQLModel tables: the read model, audit timeline, outbox and registries.

Temporal owns each referral's live state; these tables are what the REST API lists, reports
on and serves. Case data is written only by activities (``activities/records.py`` and
friends), every write idempotent. The same schema runs on SQLite and PostgreSQL; Alembic
migrations in ``models/migrations`` create it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Table, TypeDecorator, text
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

from models.domain.deadlines import REFERRAL_ACTION_WORKING_DAYS


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC instants on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store aware UTC instants")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _instant(*, index: bool = False, nullable: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), index=index, nullable=nullable))


def _json(*, nullable: bool = False) -> Any:
    return Field(sa_column=Column(JSON, nullable=nullable))


class ReferralRow(SQLModel, table=True):
    """One row per referral: the listing columns plus the full snapshot served by GET."""

    __tablename__ = "referral"
    __table_args__ = (
        Index("ix_referral_status_next", "status", "next_deadline_on", "id"),
        Index("ix_referral_la_next", "local_authority", "next_deadline_on", "id"),
        Index("ix_referral_next", "next_deadline_on", "id"),
        Index("ix_referral_created", "created_at", "id"),
        Index("ix_referral_received", "received_on", "local_authority"),
        Index("ix_referral_la_status_next", "local_authority", "status", "next_deadline_on", "id"),
        Index("ix_referral_breached_next", "breached", "next_deadline_on", "id"),
        Index("ix_referral_la_reference", "local_authority", "external_reference"),
    )

    id: str = Field(primary_key=True, max_length=64)
    route: str = Field(max_length=32, index=True)
    status: str = Field(max_length=40)
    local_authority: str = Field(max_length=64)
    version: int
    received_on: date
    created_at: datetime = _instant()
    updated_at: datetime = _instant()
    next_deadline_on: date | None = Field(default=None)
    next_deadline_name: str | None = Field(default=None, max_length=64)
    breached: bool = Field(default=False, index=True)
    certificate_kind: str | None = Field(default=None, max_length=32)
    certificate_issued_on: date | None = None
    appeal_deadline: date | None = None
    outcome: str | None = Field(default=None, max_length=32)
    closed_on: date | None = None
    external_reference: str | None = Field(default=None, max_length=64)
    snapshot: dict[str, Any] = _json()


class ExternalReferenceRow(SQLModel, table=True):
    """A council's own case reference, claimed by one referral at intake (unique per council)."""

    __tablename__ = "external_reference"

    local_authority: str = Field(primary_key=True, max_length=64)
    reference: str = Field(primary_key=True, max_length=64)
    referral_id: str = Field(max_length=64)
    created_at: datetime = _instant()


class ReferralEventRow(SQLModel, table=True):
    """The audit timeline: one row per event, keyed by referral and sequence number."""

    __tablename__ = "referral_event"
    __table_args__ = (Index("ix_referral_event_type_on", "type", "occurred_on"),)

    referral_id: str = Field(primary_key=True, max_length=64)
    seq: int = Field(primary_key=True)
    type: str = Field(max_length=64)
    occurred_on: date
    recorded_at: datetime = _instant()
    actor: str = Field(max_length=128)
    data: dict[str, Any] = _json()


class IdempotencyRow(SQLModel, table=True):
    """The first response to a POST with an ``Idempotency-Key``, replayed for repeats."""

    __tablename__ = "idempotency_record"

    client_id: str = Field(primary_key=True, max_length=128)
    key: str = Field(primary_key=True, max_length=255)
    method: str = Field(max_length=8)
    path: str = Field(max_length=512)
    request_hash: str = Field(max_length=64)
    status_code: int
    response: dict[str, Any] = _json()
    created_at: datetime = _instant()


class NotificationRow(SQLModel, table=True):
    """Outbox: each notification to each recipient, once (key = workflow id + effect)."""

    __tablename__ = "notification"

    key: str = Field(primary_key=True, max_length=255)
    referral_id: str = Field(max_length=64, index=True)
    template: str = Field(max_length=64)
    recipient: str = Field(max_length=64)
    channel: str = Field(max_length=16)
    status: str = Field(max_length=16)
    created_at: datetime = _instant()
    data: dict[str, Any] = _json()


class MediatorRow(SQLModel, table=True):
    __tablename__ = "mediator"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    send_trained: bool = False
    accreditation: str | None = Field(default=None, max_length=200)
    active: bool = True
    conflict_local_authorities: list[str] = _json()
    conflict_organisations: list[str] = _json()
    created_at: datetime = _instant()
    working_hours: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=text("'[]'")),
        description="Weekly windows, Europe/London: [{weekday, start, end}]; [] = no limit.",
    )
    unavailable: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=text("'[]'")),
        description="Dates off, inclusive: [{starts_on, ends_on}].",
    )


class VenueRow(SQLModel, table=True):
    __tablename__ = "venue"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    address: str = Field(max_length=1000)
    kind: str = Field(max_length=64, description="community_centre, church_hall, ...")
    neutral: bool = True
    accessibility: str | None = Field(default=None, max_length=2000)
    active: bool = True
    created_at: datetime = _instant()


class MeetingReservationRow(SQLModel, table=True):
    """A mediator's booked slot; overlapping active slots for one mediator are refused."""

    __tablename__ = "meeting_reservation"

    referral_id: str = Field(primary_key=True, max_length=64)
    meeting_id: str = Field(primary_key=True, max_length=64)
    mediator_id: str = Field(max_length=64, index=True)
    starts_at: datetime = _instant()
    ends_at: datetime = _instant()
    active: bool = True


class ProviderRow(SQLModel, table=True):
    """A mediation provider (e.g. Kids): named on documents, its service levels drive SLAs."""

    __tablename__ = "provider"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)
    website: str | None = Field(default=None, max_length=500)
    address: str | None = Field(default=None, max_length=1000)
    office_hours: str = Field(default="Monday to Friday, 9am to 5pm", max_length=200)
    referral_action_working_days: int = REFERRAL_ACTION_WORKING_DAYS
    created_at: datetime = _instant()


class LocalAuthorityRow(SQLModel, table=True):
    """A council: its code (ONS), name, the ICBs it works with, and its mediation provider."""

    __tablename__ = "local_authority"

    code: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    icbs: list[str] = _json()
    provider_id: str = Field(foreign_key="provider.id", max_length=64)
    active: bool = True
    created_at: datetime = _instant()


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy ``Table`` behind a SQLModel table class (typed for mypy)."""
    result: Table = model.__table__  # type: ignore[attr-defined]
    return result
