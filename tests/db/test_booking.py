"""The booking activity against the registries: availability, conflicts, concurrent bookings."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from temporalio.exceptions import ApplicationError

from activities.mediators import MediatorActivities
from models.domain.referral import VenueKind
from models.messages import BookingRequest
from models.store.tables import MediatorRow
from tests.conftest import Database
from tests.factories import HERTS

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
OFFICE = [{"weekday": d, "start": "09:00:00", "end": "17:00:00"} for d in WEEKDAYS]


async def mediator(db: Database, **values: Any) -> str:
    ident = f"med-{uuid.uuid4().hex[:8]}"
    fields: dict[str, Any] = {
        "name": "Test Mediator",
        "send_trained": True,
        "conflict_local_authorities": [],
        "conflict_organisations": [],
        "created_at": datetime.now(UTC),
    }
    row = MediatorRow(id=ident, **{**fields, **values})
    async with db.sessionmaker() as session:
        session.add(row)
        await session.commit()
    return ident


def request(mediator_id: str, starts_at: datetime, minutes: int = 150, **kw: Any) -> BookingRequest:
    values: dict[str, Any] = {
        "referral_id": str(uuid.uuid4()),
        "meeting_id": "meeting-1",
        "local_authority": HERTS,
        "organisations": ("Hertfordshire County Council", "Oakfield Primary School"),
        "mediator_id": mediator_id,
        "venue_kind": VenueKind.REMOTE,
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(minutes=minutes),
    }
    values.update(kw)
    return BookingRequest(**values)


async def refusal(db: Database, req: BookingRequest) -> tuple[str, str]:
    with pytest.raises(ApplicationError) as caught:
        await MediatorActivities(db.sessionmaker).vet_and_reserve_booking(req)
    details = caught.value.details[0]
    return caught.value.message, details["field"]


# 14 June 2027 is a Monday in British Summer Time (UTC+1); 13 Dec 2027 a Monday in GMT.
SUMMER_9AM = datetime(2027, 6, 14, 8, tzinfo=UTC)
WINTER_9AM = datetime(2027, 12, 13, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    "starts_at",
    [SUMMER_9AM, WINTER_9AM, SUMMER_9AM + timedelta(hours=5, minutes=30)],
    ids=["bst-0900", "gmt-0900", "bst-1430-ends-1700"],
)
async def test_booking_within_working_hours_is_reserved(db: Database, starts_at: datetime) -> None:
    mid = await mediator(db, working_hours=OFFICE)
    vetted = await MediatorActivities(db.sessionmaker).vet_and_reserve_booking(
        request(mid, starts_at)
    )
    assert vetted.mediator.id == mid


@pytest.mark.parametrize(
    ("starts_at", "minutes", "shown"),
    [
        (SUMMER_9AM - timedelta(minutes=1), 60, "Monday 2027-06-14 08:59–09:59"),
        (SUMMER_9AM + timedelta(hours=6), 150, "Monday 2027-06-14 15:00–17:30"),
        (WINTER_9AM - timedelta(hours=1), 60, "Monday 2027-12-13 08:00–09:00"),
        (SUMMER_9AM + timedelta(days=5), 60, "Saturday 2027-06-19 09:00–10:00"),
        (SUMMER_9AM + timedelta(hours=14), 120, "to Tuesday 2027-06-15 01:00"),
    ],
    ids=["bst-early", "bst-runs-late", "gmt-early", "saturday", "past-midnight"],
)
async def test_booking_outside_working_hours_is_refused_naming_the_field(
    db: Database, starts_at: datetime, minutes: int, shown: str
) -> None:
    mid = await mediator(db, working_hours=OFFICE)
    message, field = await refusal(db, request(mid, starts_at, minutes))
    assert field == "starts_at"
    assert "outside their working_hours (Monday 09:00–17:00, Tuesday" in message
    assert shown in message


async def test_booking_on_a_day_off_is_refused_whatever_the_hours(db: Database) -> None:
    mid = await mediator(db, unavailable=[{"starts_on": "2027-06-10", "ends_on": "2027-06-14"}])
    message, field = await refusal(db, request(mid, SUMMER_9AM))
    assert field == "starts_at"
    assert "unavailable from 2027-06-10 to 2027-06-14 (unavailable)" in message
    # The day after the last day off is free, and no hours listed means any time.
    after = SUMMER_9AM + timedelta(days=1, hours=12)
    vetted = await MediatorActivities(db.sessionmaker).vet_and_reserve_booking(request(mid, after))
    assert vetted.mediator.id == mid


async def test_conflict_with_the_council_s_registered_name_is_refused(db: Database) -> None:
    mid = await mediator(db, conflict_organisations=["HERTFORDSHIRE  county council"])
    req = request(mid, SUMMER_9AM, organisations=("Oakfield Primary School",))
    message, field = await refusal(db, req)
    assert field == "mediator_id"
    assert f"conflict of interest with the local authority {HERTS}" in message


async def test_conflict_is_refused_before_availability_is_considered(db: Database) -> None:
    mid = await mediator(db, conflict_local_authorities=[HERTS.lower()], working_hours=OFFICE)
    message, field = await refusal(db, request(mid, SUMMER_9AM + timedelta(hours=12)))
    assert field == "mediator_id"
    assert "conflict of interest" in message


async def test_concurrent_overlapping_bookings_reserve_the_slot_once(db: Database) -> None:
    mid = await mediator(db)

    async def hold_a_connection() -> None:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await asyncio.sleep(0.2)

    # Open the connections first, so that the four bookings really do run side by side.
    await asyncio.gather(*(hold_a_connection() for _ in range(4)))
    activities = MediatorActivities(db.sessionmaker)
    bookings = [request(mid, SUMMER_9AM + timedelta(minutes=15 * i)) for i in range(4)]
    results = await asyncio.gather(
        *(activities.vet_and_reserve_booking(b) for b in bookings), return_exceptions=True
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1, results
    assert all(isinstance(e, ApplicationError) and "already booked" in e.message for e in lost)
    async with db.engine.connect() as conn:
        count = await conn.execute(
            text("SELECT count(*) FROM meeting_reservation WHERE mediator_id = :m AND active"),
            {"m": mid},
        )
        assert count.scalar_one() == 1
