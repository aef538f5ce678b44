"""Migration 0003 on a database that already has mediators: they gain empty availability."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import create_engine, text

from activities.mediators import MediatorActivities
from models.domain.referral import VenueKind
from models.messages import BookingRequest
from models.migrate import alembic_config, sync_url, upgrade
from models.store.tables import MediatorRow
from tests.conftest import Database
from tests.factories import HERTS


async def test_mediator_registered_before_0003_is_bookable_after_it(db: Database) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(db.url), "0002")
    engine = create_engine(sync_url(db.url))
    with engine.begin() as conn:
        columns = conn.execute(text("SELECT * FROM mediator WHERE 1 = 0")).keys()
        assert "working_hours" not in columns
        conn.execute(
            text(
                "INSERT INTO mediator (id, name, send_trained, active, "
                "conflict_local_authorities, conflict_organisations, created_at) VALUES "
                "('med-old', 'Old Mediator', true, true, '[]', '[]', "
                "'2026-11-01 09:00:00+00:00')"
            )
        )
    engine.dispose()
    await asyncio.to_thread(upgrade, db.url)
    # Fresh connections: the schema changed under the pool.
    await db.engine.dispose()

    async with db.sessionmaker() as session:
        row = await session.get(MediatorRow, "med-old")
    assert row is not None
    assert row.working_hours == []
    assert row.unavailable == []
    starts = datetime(2027, 6, 12, 20, tzinfo=UTC)  # a Saturday evening: no limit set
    vetted = await MediatorActivities(db.sessionmaker).vet_and_reserve_booking(
        BookingRequest(
            referral_id="r-1",
            meeting_id="meeting-1",
            local_authority=HERTS,
            organisations=(),
            mediator_id="med-old",
            venue_kind=VenueKind.REMOTE,
            starts_at=starts,
            ends_at=starts + timedelta(hours=2),
        )
    )
    assert vetted.mediator.id == "med-old"
