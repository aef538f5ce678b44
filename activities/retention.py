"""Retention: erase a referral's personal data once ``retention_days`` have passed since closure.

What stays is an anonymous case: route, status, council code, dates, deadlines (due, met,
breached), outcome, certificates (number, kind, dates), meetings' dates and outcomes, party
*kinds* and answers, the audit timeline (ids, codes and dates only) — so reports, listings
and document verification still work. What goes: every name, contact detail, date of birth,
organisation, free-text issue and reason in the referral's snapshot; the notification
outbox's data; the bytes of issued documents (they name the child); and idempotency records
(they hold whole responses).

Each erasure runs every function in :data:`ERASERS` for the referral inside one transaction,
then records a ``referral_erasure`` row (what was cleared, when), so a referral is erased
exactly once and a retried activity does nothing twice. To erase a new table's personal
data, add ``"<table>": <async function(session, referral_id) -> rows changed>`` to
:data:`ERASERS`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from models.domain.referral import Referral, Status
from models.messages import ERASE_EXPIRED_REFERRALS, RetentionRequest, RetentionResult
from models.store.auth_tables import ErasureRow
from models.store.document_tables import DocumentCopyRow, DocumentRow
from models.store.tables import IdempotencyRow, NotificationRow, ReferralRow, table_of

log = logging.getLogger(__name__)

ERASED = "[erased]"
ERASED_DATE = "1900-01-01"
ERASED_CONTACT: dict[str, Any] = {
    "name": ERASED,
    "email": None,
    "phone": None,
    "preferred": "post",
    "postal_address": ERASED,
}


# --------------------------------------------------------------------------- the snapshot


def _party(party: Mapping[str, Any]) -> dict[str, Any]:
    """A party reduced to its id and kind."""
    return {
        **party,
        "organisation": ERASED,
        "role": None,
        "contact": dict(ERASED_CONTACT),
    }


def _request(request: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(request)
    referrer = dict(out["referrer"])
    referrer.update(contact=dict(ERASED_CONTACT), relationship_to_child=None)
    out["referrer"] = referrer
    out["child"] = {"name": ERASED, "date_of_birth": ERASED_DATE}
    out["supporter"] = None
    preferences = dict(out.get("preferences") or {})
    preferences.update(reasonable_adjustments=None, interpreter_language=None)
    out["preferences"] = preferences
    for key in ("invitees", "icbs", "parties"):
        if key in out:
            out[key] = [_party(p) for p in out[key]]
    if out.get("local_authority_contact"):
        out["local_authority_contact"] = _party(out["local_authority_contact"])
    for key in ("mediation_issues", "issues"):
        if key in out:
            out[key] = []
    if out.get("health_provision_sought"):
        out["health_provision_sought"] = ERASED
    return out


def _meeting(meeting: Mapping[str, Any]) -> dict[str, Any]:
    venue = dict(meeting.get("venue") or {})
    venue.update(name=None, address=None, video_link=None, accessibility=None)
    replies = [{**r, "reason": None} for r in meeting.get("replies", [])]
    return {**meeting, "venue": venue, "cancellation_reason": None, "replies": replies}


def _agreement(agreement: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if agreement is None:
        return None
    return {
        **agreement,
        "settled_issues": [],
        "open_issues": [],
        "actions": [{**a, "description": ERASED} for a in agreement.get("actions", [])],
    }


def redact_snapshot(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot with every personal field replaced; still a valid ``Referral``."""
    out = dict(snapshot)
    out["request"] = _request(snapshot["request"])
    out["parties"] = [
        {
            **p,
            "party": _party(p["party"]),
            "reason": None,
            "availability": None,
            "adjustments": None,
        }
        for p in snapshot.get("parties", [])
    ]
    out["meetings"] = [_meeting(m) for m in snapshot.get("meetings", [])]
    out["agreement"] = _agreement(snapshot.get("agreement"))
    out["notices"] = [{**n, "message": ERASED} for n in snapshot.get("notices", [])]
    out["closure_reason"] = None
    # Fails loudly (the activity retries, nothing is written) if the model moved on.
    return Referral.model_validate(out).model_dump(mode="json")


# --------------------------------------------------------------------------- erasers

Eraser = Callable[[AsyncSession, str], Awaitable[int]]


async def erase_referral(session: AsyncSession, referral_id: str) -> int:
    row = await session.get(ReferralRow, referral_id)
    if row is None:
        return 0
    row.snapshot = redact_snapshot(row.snapshot)
    session.add(row)
    return 1


async def erase_notifications(session: AsyncSession, referral_id: str) -> int:
    result = await session.exec(
        update(table_of(NotificationRow))
        .where(table_of(NotificationRow).c.referral_id == referral_id)
        .values(data={})
    )
    return int(result.rowcount or 0)


async def erase_documents(session: AsyncSession, referral_id: str) -> int:
    """The PDFs and calendars name the child: keep number, kind, dates and hash, drop bytes."""
    documents = table_of(DocumentRow)
    result = await session.exec(
        update(documents)
        .where(documents.c.referral_id == referral_id)
        .values(content=b"", calendar=None)
    )
    copies = table_of(DocumentCopyRow)  # each recipient's own copy: the same, dropped whole
    numbers = select(documents.c.number).where(documents.c.referral_id == referral_id)
    await session.exec(delete(copies).where(copies.c.number.in_(numbers)))
    return int(result.rowcount or 0)


async def erase_idempotency_records(session: AsyncSession, referral_id: str) -> int:
    """Stored responses of the referral's commands (creations expire by age: see below)."""
    records = table_of(IdempotencyRow)
    result = await session.exec(
        delete(records).where(records.c.path.like(f"/v1/referrals/{referral_id}/%"))
    )
    return int(result.rowcount or 0)


#: Table -> eraser. Extend it for every new table that holds a referral's personal data.
ERASERS: dict[str, Eraser] = {
    "referral": erase_referral,
    "notification": erase_notifications,
    "document": erase_documents,
    "idempotency_record": erase_idempotency_records,
}


# --------------------------------------------------------------------------- the activity


class RetentionActivities:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        retention_days: int,
        idempotency_retention_days: int = 30,
        erasers: Mapping[str, Eraser] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._retention = timedelta(days=retention_days)
        self._idempotency_retention = timedelta(days=idempotency_retention_days)
        self._erasers = dict(erasers if erasers is not None else ERASERS)

    async def due(self, today: date, limit: int) -> list[tuple[str, date]]:
        """Closed referrals past retention and not yet erased (oldest first)."""
        cutoff = today - self._retention
        closed_on = col(ReferralRow.closed_on)
        stmt = (
            select(col(ReferralRow.id), closed_on)
            .outerjoin(ErasureRow, col(ErasureRow.referral_id) == col(ReferralRow.id))
            .where(
                col(ReferralRow.status) == Status.CLOSED.value,
                closed_on.is_not(None),
                closed_on <= cutoff,
                col(ErasureRow.referral_id).is_(None),
            )
            .order_by(closed_on, col(ReferralRow.id))
            .limit(limit)
        )
        async with self._sessionmaker() as session:
            rows = (await session.exec(stmt)).all()
        return [(referral_id, closed) for referral_id, closed in rows if closed is not None]

    async def erase(self, referral_id: str, closed_on: date) -> dict[str, int]:
        """Erase one referral in one transaction; returns rows changed per table."""
        async with self._sessionmaker() as session:
            if await session.get(ErasureRow, referral_id) is not None:
                return {}
            cleared = {table: await fn(session, referral_id) for table, fn in self._erasers.items()}
            session.add(
                ErasureRow(
                    referral_id=referral_id,
                    closed_on=closed_on,
                    erased_at=datetime.now(UTC),
                    cleared=cleared,
                )
            )
            await session.commit()
        return cleared

    async def purge_idempotency_records(self, now: datetime) -> int:
        records = table_of(IdempotencyRow)
        async with self._sessionmaker() as session:
            result = await session.exec(
                delete(records).where(records.c.created_at < now - self._idempotency_retention)
            )
            await session.commit()
        return int(result.rowcount or 0)

    @activity.defn(name=ERASE_EXPIRED_REFERRALS)
    async def erase_expired_referrals(self, request: RetentionRequest) -> RetentionResult:
        """Erase up to ``batch`` referrals whose retention has passed; say if more remain."""
        due = await self.due(request.today, request.batch + 1)
        for referral_id, closed_on in due[: request.batch]:
            cleared = await self.erase(referral_id, closed_on)
            log.info("retention: erased referral %s (%s)", referral_id, cleared)
        purged = await self.purge_idempotency_records(datetime.now(UTC))
        return RetentionResult(
            erased=min(len(due), request.batch),
            more=len(due) > request.batch,
            idempotency_records_deleted=purged,
        )
