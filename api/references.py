"""A council's own case reference (``external_reference``), claimed by one referral at intake.

The claim is one row keyed by (council, reference), inserted before the workflow starts, so
two requests racing with the same reference cannot both win. The same referral claiming
again (a retried POST with its ``Idempotency-Key``) is no conflict. A claim left by a start
that never happened (the process died, Temporal refused it) holds no referral: the next
intake with that reference takes it over, once the claim is older than ``SETTLE`` (a start
still in flight is never overtaken).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Problem
from api.temporal import bounded
from models.messages import workflow_id
from models.store.db import dialect_of, insert_stmt
from models.store.tables import ExternalReferenceRow, ReferralRow, table_of

TAKEN = "external-reference-taken"
#: How long a claim is presumed to belong to a start still in flight.
SETTLE = timedelta(seconds=60)


def taken(reference: str, referral_id: str) -> Problem:
    return Problem(
        409,
        "Reference already used",
        f"This council already has referral {referral_id} with reference '{reference}'.",
        type_=TAKEN,
        errors=[{"field": "body.external_reference", "message": "already used by this council"}],
        existing_referral_id=referral_id,
    )


async def _holder(
    maker: async_sessionmaker[AsyncSession], local_authority: str, reference: str
) -> ExternalReferenceRow:
    async with maker() as session:
        row = await session.get(ExternalReferenceRow, (local_authority, reference))
        assert row is not None
        return row


async def _started(
    maker: async_sessionmaker[AsyncSession], temporal: Client, rid: str, seconds: float
) -> bool:
    async with maker() as session:
        if await session.get(ReferralRow, rid) is not None:
            return True
    try:
        async with bounded(seconds) as rpc_timeout:
            await temporal.get_workflow_handle(workflow_id(rid)).describe(rpc_timeout=rpc_timeout)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def claim(
    maker: async_sessionmaker[AsyncSession],
    temporal: Client,
    seconds: float,
    local_authority: str,
    reference: str,
    referral_id: str,
) -> None:
    """Claim ``reference`` for ``referral_id`` in this council, or raise a 409 (``seconds``:
    the bound on asking Temporal whether an older claim's referral ever started)."""
    table = table_of(ExternalReferenceRow)
    key = (table.c.local_authority == local_authority, table.c.reference == reference)
    async with maker() as session:
        stmt = insert_stmt(dialect_of(maker), table).values(
            local_authority=local_authority,
            reference=reference,
            referral_id=referral_id,
            created_at=datetime.now(UTC),
        )
        await session.exec(stmt.on_conflict_do_nothing())
        await session.commit()
    row = await _holder(maker, local_authority, reference)
    holder = row.referral_id
    if holder == referral_id:
        return
    claimed_at = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    if datetime.now(UTC) - claimed_at < SETTLE or await _started(maker, temporal, holder, seconds):
        raise taken(reference, holder)
    async with maker() as session:  # an orphaned claim: take it over, unless someone just did
        moved = await session.exec(
            update(table)
            .where(*key, table.c.referral_id == holder)
            .values(referral_id=referral_id, created_at=datetime.now(UTC))
        )
        await session.commit()
    if moved.rowcount != 1:
        raise taken(reference, (await _holder(maker, local_authority, reference)).referral_id)
