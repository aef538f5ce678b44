"""Booking checks against the mediator and venue registries, and slot reservations.

A mediator must be active, SEND-trained and free of any conflict of interest with the
referral's council (by code or by name) or any organisation in the case (RULES.md §4:
independent of the LA and the school; ``models/domain/mediators.py`` says what counts); an
in-person venue must be a neutral one; the meeting
must fall within the mediator's availability (weekly ``working_hours`` and ``unavailable``
dates, Europe/London). The slot is reserved idempotently (keyed by referral and meeting), and
an overlapping booking for the same mediator is refused. Bookings for one mediator are
serialised (a write on the mediator's row first), so two concurrent bookings cannot both
take the same slot.
"""

from __future__ import annotations

from sqlalchemy import and_
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.domain.availability import parse_dates_off, parse_hours, unavailability
from models.domain.mediators import conflicts_of_interest, is_neutral
from models.domain.referral import MediatorSummary, Venue, VenueKind
from models.messages import (
    BOOKING_REJECTED,
    RELEASE_RESERVATION,
    VET_AND_RESERVE_BOOKING,
    BookingRequest,
    BookingVetted,
    Release,
)
from models.store.db import dialect_of, insert_stmt
from models.store.tables import (
    LocalAuthorityRow,
    MediatorRow,
    MeetingReservationRow,
    VenueRow,
    table_of,
)


def _reject(message: str, field: str) -> ApplicationError:
    return ApplicationError(message, {"field": field}, type=BOOKING_REJECTED, non_retryable=True)


class MediatorActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._dialect = dialect_of(sessionmaker)

    @activity.defn(name=VET_AND_RESERVE_BOOKING)
    async def vet_and_reserve_booking(self, req: BookingRequest) -> BookingVetted:
        async with self._sessionmaker() as session:
            # Take the mediator's row for writing first: concurrent bookings of one mediator
            # queue here (a row lock on PostgreSQL, the write lock on SQLite).
            mediators = table_of(MediatorRow)
            await session.exec(
                mediators.update()
                .where(mediators.c.id == req.mediator_id)
                .values(active=mediators.c.active)
            )
            mediator = await session.get(MediatorRow, req.mediator_id)
            if mediator is None or not mediator.active:
                raise _reject(f"mediator_id: no active mediator '{req.mediator_id}'", "mediator_id")
            if not mediator.send_trained:
                raise _reject(
                    f"mediator_id: mediator '{mediator.id}' is not SEND-trained", "mediator_id"
                )
            council = await session.get(LocalAuthorityRow, req.local_authority)
            conflicts = conflicts_of_interest(
                mediator.conflict_local_authorities,
                mediator.conflict_organisations,
                council_code=req.local_authority,
                council_name=council.name if council is not None else None,
                organisations=req.organisations,
            )
            if conflicts.council:
                raise _reject(
                    f"mediator_id: mediator '{mediator.id}' has a conflict of interest with "
                    f"the local authority {req.local_authority} and cannot be booked",
                    "mediator_id",
                )
            if conflicts.organisations:
                raise _reject(
                    f"mediator_id: mediator '{mediator.id}' has a conflict of interest with "
                    f"{', '.join(conflicts.organisations)} and cannot be booked",
                    "mediator_id",
                )
            if req.venue_kind is VenueKind.IN_PERSON:
                row = await session.get(VenueRow, req.venue_id) if req.venue_id else None
                if row is None or not row.active:
                    raise _reject(f"venue.venue_id: no active venue '{req.venue_id}'", "venue")
                if not is_neutral(row.kind, row.neutral):
                    raise _reject(
                        f"venue.venue_id: '{row.id}' is not a neutral venue", "venue.venue_id"
                    )
                venue = Venue(
                    kind=VenueKind.IN_PERSON,
                    venue_id=row.id,
                    name=row.name,
                    address=row.address,
                    accessibility=row.accessibility,
                )
            else:
                venue = Venue(kind=VenueKind.REMOTE, video_link=req.video_link)
            why = unavailability(
                parse_hours(mediator.working_hours),
                parse_dates_off(mediator.unavailable),
                req.starts_at,
                req.ends_at,
            )
            if why is not None:
                raise _reject(f"starts_at: mediator '{mediator.id}' {why}", "starts_at")
            reservations = table_of(MeetingReservationRow)
            r = MeetingReservationRow
            clash = await session.exec(
                select(r).where(
                    col(r.mediator_id) == mediator.id,
                    col(r.active).is_(True),
                    col(r.starts_at) < req.ends_at,
                    col(r.ends_at) > req.starts_at,
                    ~and_(
                        col(r.referral_id) == req.referral_id, col(r.meeting_id) == req.meeting_id
                    ),
                )
            )
            if clash.first() is not None:
                raise _reject(
                    f"starts_at: mediator '{mediator.id}' is already booked at that time",
                    "starts_at",
                )
            stmt = insert_stmt(self._dialect, reservations).values(
                referral_id=req.referral_id,
                meeting_id=req.meeting_id,
                mediator_id=mediator.id,
                starts_at=req.starts_at,
                ends_at=req.ends_at,
                active=True,
            )
            await session.exec(stmt.on_conflict_do_nothing())
            await session.commit()
            return BookingVetted(
                mediator=MediatorSummary(
                    id=mediator.id,
                    name=mediator.name,
                    send_trained=mediator.send_trained,
                    accreditation=mediator.accreditation,
                ),
                venue=venue,
            )

    @activity.defn(name=RELEASE_RESERVATION)
    async def release_reservation(self, release: Release) -> None:
        async with self._sessionmaker() as session:
            reservations = table_of(MeetingReservationRow)
            await session.exec(
                reservations.update()
                .where(
                    reservations.c.referral_id == release.referral_id,
                    reservations.c.meeting_id == release.meeting_id,
                )
                .values(active=False)
            )
            await session.commit()
