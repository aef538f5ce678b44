"""``/v1/providers`` and ``/v1/local-authorities``: mediation providers (their service levels) and
the councils they serve."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Body, Query, Request
from pydantic import (
    BaseModel,
    Field,
)
from sqlalchemy import ColumnElement
from sqlmodel import col

from api.deps import SessionDep
from api.errors import validation_problem
from api.idempotency import IdempotencyKey
from api.routes.registries.common import (
    Email,
    HttpsUrl,
    Key,
    ListQuery,
    Page,
    Patch,
    Phone,
    Read,
    Strict,
    WriterDep,
    create,
    found,
    insert,
    now,
    page,
    update,
)
from models.domain.deadlines import REFERRAL_ACTION_WORKING_DAYS
from models.domain.referral import Identifier, ShortText, Text
from models.store.tables import LocalAuthorityRow, ProviderRow

router = APIRouter()


class ProviderCreate(Strict):
    id: Identifier = Field(description="e.g. kids.")
    name: ShortText
    phone: Phone | None = None
    email: Email | None = Field(default=None, description="The Reply-To of every email.")
    website: HttpsUrl | None = Field(default=None, description="https only.")
    address: Text | None = None
    office_hours: ShortText = "Monday to Friday, 9am to 5pm"
    referral_action_working_days: int = Field(
        default=REFERRAL_ACTION_WORKING_DAYS,
        ge=1,
        le=30,
        description="Service level: working days to action a referral (DL-13). Applies to "
        "referrals received after the change.",
    )


class ProviderUpdate(Patch):
    required: ClassVar[frozenset[str]] = frozenset(
        {"name", "office_hours", "referral_action_working_days"}
    )

    name: ShortText | None = None
    phone: Phone | None = None
    email: Email | None = Field(default=None, description="The Reply-To of every email.")
    website: HttpsUrl | None = Field(default=None, description="https only.")
    address: Text | None = None
    office_hours: ShortText | None = None
    referral_action_working_days: int | None = Field(default=None, ge=1, le=30)


class ProviderRead(Read):
    id: str
    name: str
    phone: str | None
    email: str | None
    website: str | None
    address: str | None
    office_hours: str
    referral_action_working_days: int
    created_at: datetime


class LocalAuthorityCreate(Strict):
    code: Identifier = Field(description="The council's ONS code, e.g. E10000015.")
    name: ShortText
    icbs: list[ShortText] = Field(default=[], description="The ICBs the council works with.")
    provider_id: Identifier = Field(description="Its mediation provider (see /v1/providers).")


class LocalAuthorityUpdate(Patch):
    required: ClassVar[frozenset[str]] = frozenset({"name", "icbs", "provider_id", "active"})

    name: ShortText | None = None
    icbs: list[ShortText] | None = None
    provider_id: Identifier | None = None
    active: bool | None = Field(
        default=None, description="false: new referrals for this council are refused."
    )


class LocalAuthorityRead(Read):
    code: str
    name: str
    icbs: list[str]
    provider_id: str
    active: bool
    created_at: datetime


class LocalAuthorityQuery(ListQuery):
    active: bool | None = None
    provider_id: str | None = Field(default=None, max_length=64)


async def provider_must_exist(session: SessionDep, provider_id: str) -> None:
    if await session.get(ProviderRow, provider_id) is None:
        raise validation_problem(
            [
                {
                    "field": "body.provider_id",
                    "message": f"unknown provider '{provider_id}' (see GET /v1/providers)",
                }
            ]
        )


# --------------------------------------------------------------------------- providers


@router.post(
    "/providers",
    status_code=201,
    response_model=ProviderRead,
    tags=["councils and providers"],
    summary="Register a mediation provider",
    responses={409: {"description": "The id is taken."}, 422: {"description": "Invalid."}},
)
async def create_provider(
    writer: WriterDep,
    body: Annotated[ProviderCreate, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Any:
    async def produce() -> BaseModel:
        row = ProviderRow(created_at=now(), **body.model_dump(mode="json"))
        return ProviderRead.model_validate(await insert(writer, row, "provider", body.id))

    return await create(writer, body, idempotency_key, produce)


@router.get(
    "/providers",
    response_model=Page[ProviderRead],
    tags=["councils and providers"],
    summary="List mediation providers",
)
async def list_providers(
    request: Request, session: SessionDep, query: Annotated[ListQuery, Query()]
) -> Page[ProviderRead]:
    return await page(request, session, ProviderRow, ProviderRead, [], query.limit, query.cursor)


@router.get(
    "/providers/{provider_id}",
    response_model=ProviderRead,
    tags=["councils and providers"],
    summary="A mediation provider",
    responses={404: {"description": "Unknown provider."}},
)
async def get_provider(session: SessionDep, provider_id: Key) -> ProviderRead:
    row = await found(session, ProviderRow, "provider", provider_id)
    return ProviderRead.model_validate(row)


@router.patch(
    "/providers/{provider_id}",
    response_model=ProviderRead,
    tags=["councils and providers"],
    summary="Update a mediation provider (only the fields sent)",
    description="A new service level applies to referrals received after the change.",
    responses={404: {"description": "Unknown provider."}, 422: {"description": "Invalid."}},
)
async def update_provider(
    writer: WriterDep, provider_id: Key, body: Annotated[ProviderUpdate, Body()]
) -> ProviderRead:
    row = await update(writer, ProviderRow, "provider", provider_id, body.changes())
    return ProviderRead.model_validate(row)


# --------------------------------------------------------------------------- councils


@router.post(
    "/local-authorities",
    status_code=201,
    response_model=LocalAuthorityRead,
    tags=["councils and providers"],
    summary="Register a council and its mediation provider",
    responses={409: {"description": "The code is taken."}, 422: {"description": "Invalid."}},
)
async def create_local_authority(
    writer: WriterDep,
    session: SessionDep,
    body: Annotated[LocalAuthorityCreate, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Any:
    async def produce() -> BaseModel:
        await provider_must_exist(session, body.provider_id)
        row = LocalAuthorityRow(active=True, created_at=now(), **body.model_dump(mode="json"))
        return LocalAuthorityRead.model_validate(
            await insert(writer, row, "local authority", body.code)
        )

    return await create(writer, body, idempotency_key, produce)


@router.get(
    "/local-authorities",
    response_model=Page[LocalAuthorityRead],
    tags=["councils and providers"],
    summary="List councils",
)
async def list_local_authorities(
    request: Request, session: SessionDep, query: Annotated[LocalAuthorityQuery, Query()]
) -> Page[LocalAuthorityRead]:
    where: list[ColumnElement[bool]] = []
    if query.active is not None:
        where.append(col(LocalAuthorityRow.active) == query.active)
    if query.provider_id is not None:
        where.append(col(LocalAuthorityRow.provider_id) == query.provider_id)
    return await page(
        request, session, LocalAuthorityRow, LocalAuthorityRead, where, query.limit, query.cursor
    )


@router.get(
    "/local-authorities/{code}",
    response_model=LocalAuthorityRead,
    tags=["councils and providers"],
    summary="A council",
    responses={404: {"description": "Unknown council."}},
)
async def get_local_authority(session: SessionDep, code: Key) -> LocalAuthorityRead:
    row = await found(session, LocalAuthorityRow, "local authority", code)
    return LocalAuthorityRead.model_validate(row)


@router.patch(
    "/local-authorities/{code}",
    response_model=LocalAuthorityRead,
    tags=["councils and providers"],
    summary="Update a council (only the fields sent)",
    description="A new provider applies to referrals received after the change.",
    responses={404: {"description": "Unknown council."}, 422: {"description": "Invalid."}},
)
async def update_local_authority(
    writer: WriterDep,
    session: SessionDep,
    code: Key,
    body: Annotated[LocalAuthorityUpdate, Body()],
) -> LocalAuthorityRead:
    if body.provider_id is not None:
        await provider_must_exist(session, body.provider_id)
    row = await update(writer, LocalAuthorityRow, "local authority", code, body.changes())
    return LocalAuthorityRead.model_validate(row)
