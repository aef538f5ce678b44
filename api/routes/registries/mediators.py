"""``/v1/mediators``: register, list (``bookable_for`` a council), read, update, deactivate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Body, Query, Request
from pydantic import (
    BaseModel,
    Field,
)
from sqlalchemy import ColumnElement
from sqlmodel import col

from api.bounds import check_dates
from api.deps import SessionDep
from api.idempotency import IdempotencyKey
from api.routes.registries.common import (
    Email,
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
from models.domain.availability import DatesOff, WorkingHours
from models.domain.mediators import (
    conflicts_of_interest,
)
from models.domain.referral import Identifier, ShortText
from models.store.tables import LocalAuthorityRow, MediatorRow

router = APIRouter()


class MediatorFields(Strict):
    email: Email | None = Field(default=None, description="Work contact.")
    accreditation: ShortText | None = Field(
        default=None, description="e.g. Civil Mediation Council registered."
    )
    conflict_local_authorities: list[Identifier] = Field(
        default=[],
        description="Council codes the mediator has a conflict of interest with (e.g. a "
        "former employer): never booked for their referrals.",
    )
    conflict_organisations: list[ShortText] = Field(
        default=[],
        description="Schools, colleges, councils or other organisations (by name) the "
        "mediator has a conflict of interest with: never booked where one is in the case.",
    )
    working_hours: list[WorkingHours] = Field(
        default=[],
        description="Weekly windows (Europe/London) in which meetings may be booked; "
        "empty: no weekly limit.",
    )
    unavailable: list[DatesOff] = Field(
        default=[], description="Dates off (inclusive): no meeting is booked on them."
    )


class MediatorCreate(MediatorFields):
    id: Identifier | None = Field(default=None, description="Assigned (med-…) if omitted.")
    name: ShortText
    send_trained: bool = Field(description="Has completed SEND mediation training.")


class MediatorUpdate(Patch):
    required: ClassVar[frozenset[str]] = frozenset(
        {
            "name",
            "send_trained",
            "active",
            "conflict_local_authorities",
            "conflict_organisations",
            "working_hours",
            "unavailable",
        }
    )

    name: ShortText | None = None
    email: Email | None = None
    send_trained: bool | None = None
    accreditation: ShortText | None = None
    active: bool | None = None
    conflict_local_authorities: list[Identifier] | None = None
    conflict_organisations: list[ShortText] | None = None
    working_hours: list[WorkingHours] | None = None
    unavailable: list[DatesOff] | None = None


class MediatorRead(Read):
    id: str
    name: str
    email: str | None
    send_trained: bool
    accreditation: str | None
    active: bool
    conflict_local_authorities: list[str]
    conflict_organisations: list[str]
    working_hours: list[WorkingHours]
    unavailable: list[DatesOff]
    created_at: datetime


class MediatorQuery(ListQuery):
    active: bool | None = Field(default=None, description="Only active (or inactive) ones.")
    send_trained: bool | None = None
    bookable_for: str | None = Field(
        default=None,
        max_length=64,
        description="A council code: only mediators with no conflict of interest with it.",
    )


# --------------------------------------------------------------------------- mediators


@router.post(
    "/mediators",
    status_code=201,
    response_model=MediatorRead,
    tags=["mediators"],
    summary="Register a mediator",
    responses={409: {"description": "The id is taken."}, 422: {"description": "Invalid."}},
)
async def create_mediator(
    writer: WriterDep,
    body: Annotated[MediatorCreate, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Any:
    check_dates(body)

    async def produce() -> BaseModel:
        ident = body.id or new_id("med")
        values = body.model_dump(mode="json", exclude={"id"})
        row = MediatorRow(id=ident, active=True, created_at=now(), **values)
        return MediatorRead.model_validate(await insert(writer, row, "mediator", ident))

    return await create(writer, body, idempotency_key, produce)


@router.get(
    "/mediators",
    response_model=Page[MediatorRead],
    tags=["mediators"],
    summary="List mediators",
)
async def list_mediators(
    request: Request, session: SessionDep, query: Annotated[MediatorQuery, Query()]
) -> Page[MediatorRead]:
    where: list[ColumnElement[bool]] = []
    if query.active is not None:
        where.append(col(MediatorRow.active) == query.active)
    if query.send_trained is not None:
        where.append(col(MediatorRow.send_trained) == query.send_trained)
    keep: Callable[[MediatorRow], bool] | None = None
    if (code := query.bookable_for) is not None:
        council = await session.get(LocalAuthorityRow, code)
        name = council.name if council is not None else None

        def keep(m: MediatorRow) -> bool:
            return not conflicts_of_interest(
                m.conflict_local_authorities,
                m.conflict_organisations,
                council_code=code,
                council_name=name,
            ).council

    return await page(
        request, session, MediatorRow, MediatorRead, where, query.limit, query.cursor, keep
    )


@router.get(
    "/mediators/{mediator_id}",
    response_model=MediatorRead,
    tags=["mediators"],
    summary="A mediator",
    responses={404: {"description": "Unknown mediator."}},
)
async def get_mediator(session: SessionDep, mediator_id: Key) -> MediatorRead:
    row = await found(session, MediatorRow, "mediator", mediator_id)
    return MediatorRead.model_validate(row)


@router.patch(
    "/mediators/{mediator_id}",
    response_model=MediatorRead,
    tags=["mediators"],
    summary="Update a mediator (only the fields sent)",
    description="Changes apply to bookings made after the change; booked meetings stay.",
    responses={404: {"description": "Unknown mediator."}, 422: {"description": "Invalid."}},
)
async def update_mediator(
    writer: WriterDep, mediator_id: Key, body: Annotated[MediatorUpdate, Body()]
) -> MediatorRead:
    check_dates(body)
    row = await update(writer, MediatorRow, "mediator", mediator_id, body.changes())
    return MediatorRead.model_validate(row)


@router.delete(
    "/mediators/{mediator_id}",
    response_model=MediatorRead,
    tags=["mediators"],
    summary="Deactivate a mediator (never deleted: bookings refer to it)",
    responses={404: {"description": "Unknown mediator."}},
)
async def deactivate_mediator(writer: WriterDep, mediator_id: Key) -> MediatorRead:
    row = await update(
        writer, MediatorRow, "mediator", mediator_id, {"active": False}, action="deactivated"
    )
    return MediatorRead.model_validate(row)
