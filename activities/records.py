"""The read model's only writer: referral rows and the audit timeline, written idempotently.

Every write is keyed: a referral row is replaced only by a newer ``version``, and events are
keyed by ``(referral_id, seq)``, so a retried or replayed activity never doubles an event and
an older write never overwrites a newer state.

``project_referral`` (workflows from ``perf-v1`` on, run as a *local* activity: one marker in
the history instead of a scheduled activity and a workflow task of its own) writes the same,
then delivers the new events' webhooks at once through the delivery ledger (once per event and
subscription, as ``publish_events`` does); what could not be delivered at once is handed back,
and the workflow gives it to ``publish_events``, which retries as long as the window allows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from models.domain.referral import Referral
from models.domain.summary import any_breach, next_due
from models.messages import PROJECT_REFERRAL, RECORD_REFERRAL, Projected, Projection
from models.store.db import dialect_of, insert_stmt
from models.store.tables import ReferralEventRow, ReferralRow, table_of


def referral_row_values(referral: Referral, at: datetime) -> dict[str, Any]:
    due = next_due(referral)
    first = referral.certificate
    return {
        "id": referral.id,
        "route": referral.route.value,
        "status": referral.status.value,
        "local_authority": referral.local_authority,
        "version": referral.version,
        "received_on": referral.received_on,
        "created_at": referral.created_at,
        "updated_at": at,
        "next_deadline_on": due[1] if due else None,
        "next_deadline_name": due[0] if due else None,
        "breached": any_breach(referral),
        "certificate_kind": first.kind.value if first else None,
        "certificate_issued_on": first.issued_on if first else None,
        "appeal_deadline": referral.appeal_deadline,
        "outcome": referral.outcome.value if referral.outcome else None,
        "closed_on": referral.closed_on,
        "external_reference": referral.request.external_reference,
        "snapshot": referral.model_dump(mode="json"),
    }


log = logging.getLogger(__name__)

#: Delivers a projection's events now; returns the seqs not (yet) delivered.
Publisher = Callable[[Projection], Awaitable[tuple[int, ...]]]

#: The most a projection waits on webhook endpoints before handing them to ``publish_events``
#: (the local activity holds the workflow task meanwhile).
PUBLISH_AT_ONCE_SECONDS = 5.0


class RecordActivities:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        publisher: Publisher | None = None,
        publish_budget: float = PUBLISH_AT_ONCE_SECONDS,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._dialect = dialect_of(sessionmaker)
        self._publisher = publisher
        self._budget = publish_budget

    @activity.defn(name=RECORD_REFERRAL)
    async def record_referral(self, projection: Projection) -> None:
        """Upsert the referral row (newer versions only) and append its new events."""
        await self._record(projection)

    @activity.defn(name=PROJECT_REFERRAL)
    async def project_referral(self, projection: Projection) -> Projected:
        """Record the projection, then deliver its webhooks if that is quick; returns the
        events left for ``publish_events`` (all of them if delivery could not be tried)."""
        await self._record(projection)
        if not projection.publish:
            return Projected()
        if self._publisher is None:
            return Projected(unsent=projection.publish)
        try:
            async with asyncio.timeout(self._budget):
                unsent = await self._publisher(projection)
        except Exception as exc:  # handed on, never lost: publish_events retries
            log.warning("webhooks left to publish_events: %s", type(exc).__name__)
            unsent = projection.publish
        return Projected(unsent=unsent)

    async def _record(self, projection: Projection) -> None:
        async with self._sessionmaker() as session:
            dialect = self._dialect
            referrals = table_of(ReferralRow)
            values = referral_row_values(projection.referral, projection.at)
            stmt = insert_stmt(dialect, referrals).values(**values)
            updatable = {k: stmt.excluded[k] for k in values if k not in ("id", "created_at")}
            stmt = stmt.on_conflict_do_update(
                index_elements=["id"],
                set_=updatable,
                where=referrals.c.version < stmt.excluded.version,
            )
            await session.exec(stmt)
            if projection.events:
                rows = [
                    {
                        "referral_id": projection.referral.id,
                        "seq": e.seq,
                        "type": e.type,
                        "occurred_on": e.on,
                        "recorded_at": e.at,
                        "actor": e.actor,
                        "data": e.data,
                    }
                    for e in projection.events
                ]
                events = insert_stmt(dialect, table_of(ReferralEventRow)).values(rows)
                await session.exec(events.on_conflict_do_nothing())
            await session.commit()
