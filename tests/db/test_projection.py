"""The projection activity is idempotent: no doubled events, no older state over a newer one."""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import TypeAdapter
from sqlmodel import col, select

from activities.records import RecordActivities
from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain import intake
from models.domain import transitions as tr
from models.domain.commands import InformationSession
from models.domain.referral import ReferralCreate
from models.messages import EventRecord, Projection
from models.store.tables import ReferralEventRow, ReferralRow
from tests.conftest import Database
from tests.factories import mediation_body

RECEIVED = date(2026, 11, 20)


def opened() -> tr.Decision:
    ctx = tr.Context(today=RECEIVED, cal=england_and_wales_calendar(2025, 2028), policy=tr.Policy())
    request = TypeAdapter(ReferralCreate).validate_python(mediation_body())
    return intake.open_referral(
        "0b6f1f0e-0000-4000-8000-000000000001",
        request,
        received_on=RECEIVED,
        created_at=datetime(2026, 11, 20, 9, tzinfo=UTC),
        ctx=ctx,
    )


def events(start: int, decision: tr.Decision) -> tuple[EventRecord, ...]:
    at = datetime(2026, 11, 20, 9, tzinfo=UTC)
    return tuple(
        EventRecord(seq=start + i, type=e.type, on=e.on, at=at, actor=e.actor, data=e.data)
        for i, e in enumerate(decision.events)
    )


async def test_retried_projection_writes_each_event_once(db: Database) -> None:
    records = RecordActivities(db.sessionmaker)
    decision = opened()
    projection = Projection(
        referral=decision.referral, events=events(1, decision), at=datetime.now(UTC)
    )
    for _ in range(3):
        await records.record_referral(projection)
    async with db.sessionmaker() as session:
        rows = (await session.exec(select(ReferralEventRow))).all()
        referral = await session.get(ReferralRow, decision.referral.id)
    assert [r.seq for r in rows] == [1]
    assert rows[0].type == "referral.created"
    assert referral is not None
    assert referral.status == "awaiting_information_session"


async def test_older_version_never_overwrites_newer(db: Database) -> None:
    records = RecordActivities(db.sessionmaker)
    first = opened()
    ctx = tr.Context(today=RECEIVED, cal=england_and_wales_calendar(2025, 2028), policy=tr.Policy())
    second = tr.decide(first.referral, InformationSession(), ctx)
    newer = Projection(referral=second.referral, events=events(2, second), at=datetime.now(UTC))
    older = Projection(referral=first.referral, events=events(1, first), at=datetime.now(UTC))
    await records.record_referral(newer)
    await records.record_referral(older)  # arrives late, e.g. a retry after a timeout
    async with db.sessionmaker() as session:
        row = await session.get(ReferralRow, first.referral.id)
        seqs = (
            await session.exec(select(ReferralEventRow.seq).order_by(col(ReferralEventRow.seq)))
        ).all()
    assert row is not None
    assert row.status == "awaiting_family_decision"
    assert row.version == second.referral.version
    assert list(seqs) == [1, 2, 3]
