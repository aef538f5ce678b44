"""Tables for API keys and for the record of erasures under the retention policy.

- ``api_key``: one row per key a client system holds. Only the SHA-256 of the key's random
  secret is stored; the key itself is shown once, when created (``python -m api.keys``).
  Keys are revoked, never deleted, so the audit trail can always name the client.
- ``referral_erasure``: one row per referral whose personal data was erased after the
  retention period (what was cleared, when), so erasure is done once and can be shown.
- ``registry_change``: the audit trail of the registries (mediators, venues, providers,
  councils): who (the API key's id and client name), when, and each changed field's value
  before and after. Registries hold no secrets; nothing here is personal data about a child.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from models.store.tables import UTCDateTime


class ApiKeyRow(SQLModel, table=True):
    """A client system's API key: its id (the public prefix), hashed secret and scopes."""

    __tablename__ = "api_key"

    key_id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=128, index=True, description="The client system (audit actor).")
    secret_sha256: str = Field(max_length=64, description="hex SHA-256 of the random secret.")
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    local_authorities: list[str] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="Council codes this client may act for; null = every council.",
    )
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class ErasureRow(SQLModel, table=True):
    """A referral whose personal data was erased: when, and what was cleared."""

    __tablename__ = "referral_erasure"

    referral_id: str = Field(primary_key=True, max_length=64)
    closed_on: date
    erased_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    cleared: dict[str, Any] = Field(
        sa_column=Column(JSON, nullable=False), description="Rows changed per table."
    )


class RegistryChangeRow(SQLModel, table=True):
    """One change to a registry entry: who made it, when, and what changed (before/after)."""

    __tablename__ = "registry_change"
    __table_args__ = (Index("ix_registry_change_entry", "kind", "entry_id", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32, description="mediators, venues, providers, local-authorities")
    entry_id: str = Field(max_length=64)
    action: str = Field(max_length=16, description="created, changed or deactivated")
    actor_key_id: str = Field(max_length=32, description="The API key that made the change.")
    actor_name: str = Field(max_length=128, description="That key's client name (not unique).")
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    changes: dict[str, Any] = Field(
        sa_column=Column(JSON, nullable=False),
        description="{field: {before, after}} for each field that changed.",
    )
