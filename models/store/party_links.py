"""Party links and the page rate limit: tables and the queries the worker and the API share.

- ``party_link``: one row per personal link (``models/domain/party_links.py``), inserted once
  per send (``send_key``, the delivery's key), so a retried send finds the link it minted.
  Only the token's SHA-256 is looked up. ``token_sealed`` holds the token sealed with the
  codec key (AES-GCM, the row's id bound in) only until that email's delivery has settled,
  so that a retry rebuilds the identical email; it is then cleared. ``used_at``/``decided``
  say what was decided through it (ids, codes and dates only); ``revoked_at`` with
  ``revoked_reason`` ``superseded`` when a later link for the same decision was sent.
- ``page_rate``: requests to the link pages per client and minute, counted in the database
  so that the limit holds across every API process.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import Field, SQLModel, col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.store.db import dialect_of, insert_stmt
from models.store.tables import UTCDateTime, table_of

SUPERSEDED = "superseded"


class PartyLinkRow(SQLModel, table=True):
    """A personal link: who it is for, what it decides, until when, and what came of it."""

    __tablename__ = "party_link"
    __table_args__ = (Index("ix_party_link_slot", "referral_id", "slot"),)

    id: str = Field(primary_key=True, max_length=32)
    token_sha256: str = Field(max_length=64, unique=True)
    token_sealed: str | None = Field(default=None, max_length=200)
    send_key: str = Field(max_length=255, unique=True, description="The delivery it went out in.")
    referral_id: str = Field(max_length=64)
    party: str = Field(max_length=64, description="family, supporter or a party id.")
    purpose: str = Field(max_length=32)
    subject: str | None = Field(
        default=None, max_length=64, description="The meeting id or document number."
    )
    slot: str = Field(max_length=200, description="purpose:party:subject (one decision).")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    decided: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    revoked_reason: str | None = Field(default=None, max_length=32)


class PageRateRow(SQLModel, table=True):
    """Requests to the link pages from one client (keyed hash of its address) in one minute."""

    __tablename__ = "page_rate"

    bucket: str = Field(primary_key=True, max_length=80)
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    hits: int = 0


def _engine(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    bind = sessionmaker.kw.get("bind")
    assert isinstance(bind, AsyncEngine), "sessionmaker must be bound to an engine"
    return bind


async def ensure_link(
    sessionmaker: async_sessionmaker[AsyncSession], values: dict[str, Any]
) -> tuple[PartyLinkRow, bool]:
    """Insert the link for ``values['send_key']`` unless one exists; the stored row, and
    whether it is new. A new link supersedes the open links for the same decision.

    SQLAlchemy Core in one transaction (the worker's hot path: once per email with a link);
    the row comes back from ``INSERT … RETURNING`` when new, from one ``SELECT`` when not."""
    table = table_of(PartyLinkRow)
    stmt = insert_stmt(dialect_of(sessionmaker), table).values(**values)
    async with _engine(sessionmaker).begin() as conn:
        result = await conn.execute(
            stmt.on_conflict_do_nothing(index_elements=["send_key"]).returning(*table.c)
        )
        found = result.first()  # psycopg's rowcount does not say: RETURNING
        created = found is not None
        if created:
            await conn.execute(
                update(table)
                .where(
                    table.c.referral_id == values["referral_id"],
                    table.c.slot == values["slot"],
                    table.c.id != values["id"],
                    table.c.used_at.is_(None),
                    table.c.revoked_at.is_(None),
                )
                .values(revoked_at=values["created_at"], revoked_reason=SUPERSEDED)
            )
        else:
            result = await conn.execute(
                select(*table.c).where(table.c.send_key == values["send_key"])
            )
            found = result.one()
    assert found is not None
    return PartyLinkRow(**found._mapping), created


async def forget_token(sessionmaker: async_sessionmaker[AsyncSession], send_key: str) -> None:
    """The email went out (or never will): nothing needs the sealed token any more."""
    table = table_of(PartyLinkRow)
    engine = _engine(sessionmaker).execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(
            update(table)
            .where(table.c.send_key == send_key, table.c.token_sealed.is_not(None))
            .values(token_sealed=None)
        )


async def find_link(
    sessionmaker: async_sessionmaker[AsyncSession], digest: str
) -> PartyLinkRow | None:
    async with sessionmaker() as session:
        result = await session.exec(
            select(PartyLinkRow).where(col(PartyLinkRow.token_sha256) == digest)
        )
        return result.first()


async def mark_used(
    sessionmaker: async_sessionmaker[AsyncSession],
    link_id: str,
    *,
    at: datetime,
    decided: dict[str, Any],
) -> None:
    """Record what was decided through the link (the first answer only)."""
    table = table_of(PartyLinkRow)
    async with sessionmaker() as session:
        await session.exec(
            update(table)
            .where(table.c.id == link_id, table.c.used_at.is_(None))
            .values(used_at=at, decided=decided, token_sealed=None)
        )
        await session.commit()


async def count_hit(
    sessionmaker: async_sessionmaker[AsyncSession], client: str, window_start: datetime
) -> int:
    """Count one request from ``client`` in the minute starting ``window_start``; returns the
    minute's count so far. Every API process shares the count (one row per client and minute)."""
    table = table_of(PageRateRow)
    bucket = f"{int(window_start.timestamp())}:{client}"
    async with sessionmaker() as session:
        stmt = insert_stmt(dialect_of(sessionmaker), table).values(
            bucket=bucket, window_start=window_start, hits=1
        )
        await session.exec(
            stmt.on_conflict_do_update(index_elements=["bucket"], set_={"hits": table.c.hits + 1})
        )
        hits = (
            await session.exec(select(PageRateRow.hits).where(col(PageRateRow.bucket) == bucket))
        ).one()
        await session.exec(delete(PageRateRow).where(col(PageRateRow.window_start) < window_start))
        await session.commit()
    return int(hits)
