"""``/v1/venues``: register, list, read, update, deactivate; a school or council office is never
neutral (``models/domain/mediators.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Body, Query, Request
from pydantic import (
    BaseModel,
    Field,
    model_validator,
)
from sqlalchemy import ColumnElement
from sqlmodel import col

from api.deps import SessionDep
from api.errors import validation_problem
from api.idempotency import IdempotencyKey
from api.routes.registries.common import (
    Key,
    ListQuery,
    Page,
    Patch,
    Read,
    Strict,
    WriterDep,
    create,
    found,
    insert,
    new_id,
    now,
    page,
    update,
)
from models.domain.mediators import (
    VenueType,
    neutral_by_default,
    not_neutral,
)
from models.domain.referral import Identifier, ShortText, Text
from models.store.tables import VenueRow

router = APIRouter()


class VenueCreate(Strict):
    id: Identifier | None = Field(default=None, description="Assigned (venue-…) if omitted.")
    name: ShortText
    address: Text
    kind: VenueType
    neutral: bool | None = Field(
        default=None,
        description="Neutral ground for every party (default: true unless a school or "
        "council office, which never are).",
    )
    accessibility: Text | None = Field(
        default=None, description="e.g. step-free access, hearing loop, quiet room, parking."
    )

    @model_validator(mode="after")
    def _party_premises_not_neutral(self) -> VenueCreate:
        why = not_neutral(self.kind, bool(self.neutral))
        if why is not None:
            raise ValueError(f"neutral: {why}")
        return self


class VenueUpdate(Patch):
    required: ClassVar[frozenset[str]] = frozenset({"name", "address", "kind", "neutral", "active"})

    name: ShortText | None = None
    address: Text | None = None
    kind: VenueType | None = None
    neutral: bool | None = None
    accessibility: Text | None = None
    active: bool | None = None


class VenueRead(Read):
    id: str
    name: str
    address: str
    kind: str
    neutral: bool
    accessibility: str | None
    active: bool
    created_at: datetime


class VenueQuery(ListQuery):
    active: bool | None = None
    neutral: bool | None = None


# --------------------------------------------------------------------------- venues


@router.post(
    "/venues",
    status_code=201,
    response_model=VenueRead,
    tags=["venues"],
    summary="Register a venue",
    responses={409: {"description": "The id is taken."}, 422: {"description": "Invalid."}},
)
async def create_venue(
    writer: WriterDep,
    body: Annotated[VenueCreate, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Any:
    async def produce() -> BaseModel:
        ident = body.id or new_id("venue")
        neutral = body.neutral if body.neutral is not None else neutral_by_default(body.kind)
        values = body.model_dump(mode="json", exclude={"id", "neutral"})
        row = VenueRow(id=ident, neutral=neutral, active=True, created_at=now(), **values)
        return VenueRead.model_validate(await insert(writer, row, "venue", ident))

    return await create(writer, body, idempotency_key, produce)


@router.get("/venues", response_model=Page[VenueRead], tags=["venues"], summary="List venues")
async def list_venues(
    request: Request, session: SessionDep, query: Annotated[VenueQuery, Query()]
) -> Page[VenueRead]:
    where: list[ColumnElement[bool]] = []
    if query.active is not None:
        where.append(col(VenueRow.active) == query.active)
    if query.neutral is not None:
        where.append(col(VenueRow.neutral) == query.neutral)
    return await page(request, session, VenueRow, VenueRead, where, query.limit, query.cursor)


@router.get(
    "/venues/{venue_id}",
    response_model=VenueRead,
    tags=["venues"],
    summary="A venue",
    responses={404: {"description": "Unknown venue."}},
)
async def get_venue(session: SessionDep, venue_id: Key) -> VenueRead:
    row = await found(session, VenueRow, "venue", venue_id)
    return VenueRead.model_validate(row)


@router.patch(
    "/venues/{venue_id}",
    response_model=VenueRead,
    tags=["venues"],
    summary="Update a venue (only the fields sent)",
    responses={404: {"description": "Unknown venue."}, 422: {"description": "Invalid."}},
)
async def update_venue(
    writer: WriterDep, session: SessionDep, venue_id: Key, body: Annotated[VenueUpdate, Body()]
) -> VenueRead:
    current = await found(session, VenueRow, "venue", venue_id)
    changes = body.changes()
    why = not_neutral(changes.get("kind", current.kind), changes.get("neutral", current.neutral))
    if why is not None:
        raise validation_problem([{"field": "body.neutral", "message": why}])
    row = await update(writer, VenueRow, "venue", venue_id, changes)
    return VenueRead.model_validate(row)


@router.delete(
    "/venues/{venue_id}",
    response_model=VenueRead,
    tags=["venues"],
    summary="Deactivate a venue (never deleted: bookings refer to it)",
    responses={404: {"description": "Unknown venue."}},
)
async def deactivate_venue(writer: WriterDep, venue_id: Key) -> VenueRead:
    row = await update(writer, VenueRow, "venue", venue_id, {"active": False}, action="deactivated")
    return VenueRead.model_validate(row)
