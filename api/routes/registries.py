"""Registries: ``/v1/mediators``, ``/v1/venues``, ``/v1/local-authorities``, ``/v1/providers``.

Create (POST, with ``Idempotency-Key``), list, get and update (PATCH) each; mediators and
venues are deactivated by DELETE (``active`` = false), never removed, since bookings refer
to them; a council is deactivated by PATCH ``{"active": false}``. Bookings draw on the
mediator and venue registries (SEND training, conflicts of interest, availability,
neutral venues); a referral takes its council's provider and that provider's service levels.

Registries serve every council (one provider, mediator or venue works for several), so only
keys for all councils may change them (``api.keys.COUNCIL_WIDE_SCOPES``). Every change is
audited: ``GET /v1/{registry}/{id}/changes`` lists who (key id and client name), when, and
each field before and after. Every field that reaches an email header, a document or a link
is validated here: one-line text without control characters, bare email addresses, https
links without credentials.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    UrlConstraints,
    model_validator,
)
from sqlalchemy import ColumnElement
from sqlmodel import SQLModel, col

from api.auth import principal_of
from api.bounds import check_dates, cursor_signer
from api.deps import SessionDep
from api.errors import Problem, validation_problem
from api.idempotency import IdempotencyKey, body_hash, idempotent
from api.routes.referrals import client_id
from models.domain.availability import DatesOff, WorkingHours
from models.domain.deadlines import REFERRAL_ACTION_WORKING_DAYS
from models.domain.mediators import (
    VenueType,
    conflicts_of_interest,
    neutral_by_default,
    not_neutral,
)
from models.domain.referral import Identifier, ShortText, Text
from models.store import registries
from models.store.auth_tables import RegistryChangeRow
from models.store.tables import LocalAuthorityRow, MediatorRow, ProviderRow, VenueRow

router = APIRouter()

Key = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{6,20}$")]


def _bare_address(value: Any) -> Any:
    if isinstance(value, str) and ("<" in value or ">" in value):
        raise ValueError("a bare email address, without a display name")
    return value


def _no_credentials(url: HttpUrl) -> HttpUrl:
    if url.username is not None or url.password is not None:
        raise ValueError("a link without a user name or password")
    return url


#: Goes into To/Reply-To headers and onto documents: one real address, nothing else.
Email = Annotated[EmailStr, BeforeValidator(_bare_address)]
#: Printed on documents as a link: https only, no credentials.
HttpsUrl = Annotated[
    HttpUrl,
    UrlConstraints(allowed_schemes=["https"], max_length=500),
    AfterValidator(_no_credentials),
]

Model = TypeVar("Model", bound=BaseModel)


# --------------------------------------------------------------------------- schemas


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Patch(Strict):
    """PATCH bodies: only the fields sent change; ``null`` only where a field may be empty."""

    required: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Patch:
        nulls = sorted(n for n in self.model_fields_set & self.required if getattr(self, n) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)}: cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class Read(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


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


class Page(BaseModel, Generic[Model]):
    items: list[Model]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class ListQuery(Strict):
    limit: int = Field(default=50, ge=1, le=200, description="Page size (at most 200).")
    cursor: str | None = Field(
        default=None, max_length=200, description="`next_cursor` from the previous page."
    )


class MediatorQuery(ListQuery):
    active: bool | None = Field(default=None, description="Only active (or inactive) ones.")
    send_trained: bool | None = None
    bookable_for: str | None = Field(
        default=None,
        max_length=64,
        description="A council code: only mediators with no conflict of interest with it.",
    )


class VenueQuery(ListQuery):
    active: bool | None = None
    neutral: bool | None = None


class LocalAuthorityQuery(ListQuery):
    active: bool | None = None
    provider_id: str | None = Field(default=None, max_length=64)


# --------------------------------------------------------------------------- helpers


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _not_found(kind: str, key: str) -> Problem:
    return Problem(404, "Not found", f"No {kind} '{key}'.")


async def _create(
    request: Request,
    body: BaseModel,
    key: str | None,
    produce: Callable[[], Awaitable[BaseModel]],
) -> JSONResponse:
    async def answer() -> tuple[int, dict[str, Any]]:
        return 201, (await produce()).model_dump(mode="json")

    return await idempotent(
        request.state.sessionmaker,
        client_id=client_id(request),
        key=key,
        method="POST",
        path=request.url.path,
        request_hash=body_hash(body.model_dump(mode="json", exclude_none=True)),
        produce=answer,
    )


#: Each registry's name in the API's paths and in its audit trail.
COLLECTIONS: dict[type[SQLModel], str] = {
    MediatorRow: "mediators",
    VenueRow: "venues",
    ProviderRow: "providers",
    LocalAuthorityRow: "local-authorities",
}


def _audit(request: Request, model: type[SQLModel]) -> registries.Audit:
    principal = principal_of(request)
    return registries.Audit(
        kind=COLLECTIONS[model],
        key_id=principal.key_id if principal is not None else client_id(request),
        name=principal.name if principal is not None else client_id(request),
    )


async def _insert(request: Request, row: SQLModel, kind: str, key: str) -> SQLModel:
    try:
        return await registries.insert(request.state.sessionmaker, row, _audit(request, type(row)))
    except registries.AlreadyExists as exc:
        raise Problem(
            409, "Already registered", f"A {kind} '{key}' already exists.", type_="already-exists"
        ) from exc


async def _update(
    request: Request,
    model: type[SQLModel],
    kind: str,
    key: str,
    changes: dict[str, Any],
    *,
    action: str = "changed",
) -> SQLModel:
    row = await registries.update(
        request.state.sessionmaker, model, key, changes, _audit(request, model), action=action
    )
    if row is None:
        raise _not_found(kind, key)
    return row


async def _page(
    request: Request,
    session: SessionDep,
    model: type[SQLModel],
    read: type[Model],
    where: Sequence[ColumnElement[bool]],
    limit: int,
    cursor: str | None,
    keep: Callable[[Any], bool] | None = None,
) -> Page[Model]:
    try:
        found = await registries.page(
            session,
            model,
            where,
            limit=limit,
            cursor=cursor,
            signer=cursor_signer(request),
            keep=keep,
        )
    except registries.BadCursor as exc:
        raise validation_problem([{"field": "query.cursor", "message": str(exc)}]) from exc
    return Page(items=[read.model_validate(r) for r in found.rows], next_cursor=found.next_cursor)


async def _provider_must_exist(session: SessionDep, provider_id: str) -> None:
    if await session.get(ProviderRow, provider_id) is None:
        raise validation_problem(
            [
                {
                    "field": "body.provider_id",
                    "message": f"unknown provider '{provider_id}' (see GET /v1/providers)",
                }
            ]
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
    request: Request,
    body: Annotated[MediatorCreate, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Any:
    check_dates(body)

    async def produce() -> BaseModel:
        ident = body.id or _new_id("med")
        values = body.model_dump(mode="json", exclude={"id"})
        row = MediatorRow(id=ident, active=True, created_at=_now(), **values)
        return MediatorRead.model_validate(await _insert(request, row, "mediator", ident))

    return await _create(request, body, idempotency_key, produce)


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

    return await _page(
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
    row = await session.get(MediatorRow, mediator_id)
    if row is None:
        raise _not_found("mediator", mediator_id)
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
    request: Request, mediator_id: Key, body: Annotated[MediatorUpdate, Body()]
) -> MediatorRead:
    check_dates(body)
    row = await _update(request, MediatorRow, "mediator", mediator_id, body.changes())
    return MediatorRead.model_validate(row)


@router.delete(
    "/mediators/{mediator_id}",
    response_model=MediatorRead,
    tags=["mediators"],
    summary="Deactivate a mediator (never deleted: bookings refer to it)",
    responses={404: {"description": "Unknown mediator."}},
)
async def deactivate_mediator(request: Request, mediator_id: Key) -> MediatorRead:
    row = await _update(
        request, MediatorRow, "mediator", mediator_id, {"active": False}, action="deactivated"
    )
    return MediatorRead.model_validate(row)


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
    request: Request,
    body: Annotated[VenueCreate, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Any:
    async def produce() -> BaseModel:
        ident = body.id or _new_id("venue")
        neutral = body.neutral if body.neutral is not None else neutral_by_default(body.kind)
        values = body.model_dump(mode="json", exclude={"id", "neutral"})
        row = VenueRow(id=ident, neutral=neutral, active=True, created_at=_now(), **values)
        return VenueRead.model_validate(await _insert(request, row, "venue", ident))

    return await _create(request, body, idempotency_key, produce)


@router.get("/venues", response_model=Page[VenueRead], tags=["venues"], summary="List venues")
async def list_venues(
    request: Request, session: SessionDep, query: Annotated[VenueQuery, Query()]
) -> Page[VenueRead]:
    where: list[ColumnElement[bool]] = []
    if query.active is not None:
        where.append(col(VenueRow.active) == query.active)
    if query.neutral is not None:
        where.append(col(VenueRow.neutral) == query.neutral)
    return await _page(request, session, VenueRow, VenueRead, where, query.limit, query.cursor)


@router.get(
    "/venues/{venue_id}",
    response_model=VenueRead,
    tags=["venues"],
    summary="A venue",
    responses={404: {"description": "Unknown venue."}},
)
async def get_venue(session: SessionDep, venue_id: Key) -> VenueRead:
    row = await session.get(VenueRow, venue_id)
    if row is None:
        raise _not_found("venue", venue_id)
    return VenueRead.model_validate(row)


@router.patch(
    "/venues/{venue_id}",
    response_model=VenueRead,
    tags=["venues"],
    summary="Update a venue (only the fields sent)",
    responses={404: {"description": "Unknown venue."}, 422: {"description": "Invalid."}},
)
async def update_venue(
    request: Request, session: SessionDep, venue_id: Key, body: Annotated[VenueUpdate, Body()]
) -> VenueRead:
    current = await session.get(VenueRow, venue_id)
    if current is None:
        raise _not_found("venue", venue_id)
    changes = body.changes()
    why = not_neutral(changes.get("kind", current.kind), changes.get("neutral", current.neutral))
    if why is not None:
        raise validation_problem([{"field": "body.neutral", "message": why}])
    row = await _update(request, VenueRow, "venue", venue_id, changes)
    return VenueRead.model_validate(row)


@router.delete(
    "/venues/{venue_id}",
    response_model=VenueRead,
    tags=["venues"],
    summary="Deactivate a venue (never deleted: bookings refer to it)",
    responses={404: {"description": "Unknown venue."}},
)
async def deactivate_venue(request: Request, venue_id: Key) -> VenueRead:
    row = await _update(
        request, VenueRow, "venue", venue_id, {"active": False}, action="deactivated"
    )
    return VenueRead.model_validate(row)


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
    request: Request,
    body: Annotated[ProviderCreate, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Any:
    async def produce() -> BaseModel:
        row = ProviderRow(created_at=_now(), **body.model_dump(mode="json"))
        return ProviderRead.model_validate(await _insert(request, row, "provider", body.id))

    return await _create(request, body, idempotency_key, produce)


@router.get(
    "/providers",
    response_model=Page[ProviderRead],
    tags=["councils and providers"],
    summary="List mediation providers",
)
async def list_providers(
    request: Request, session: SessionDep, query: Annotated[ListQuery, Query()]
) -> Page[ProviderRead]:
    return await _page(request, session, ProviderRow, ProviderRead, [], query.limit, query.cursor)


@router.get(
    "/providers/{provider_id}",
    response_model=ProviderRead,
    tags=["councils and providers"],
    summary="A mediation provider",
    responses={404: {"description": "Unknown provider."}},
)
async def get_provider(session: SessionDep, provider_id: Key) -> ProviderRead:
    row = await session.get(ProviderRow, provider_id)
    if row is None:
        raise _not_found("provider", provider_id)
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
    request: Request, provider_id: Key, body: Annotated[ProviderUpdate, Body()]
) -> ProviderRead:
    row = await _update(request, ProviderRow, "provider", provider_id, body.changes())
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
    request: Request,
    session: SessionDep,
    body: Annotated[LocalAuthorityCreate, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Any:
    async def produce() -> BaseModel:
        await _provider_must_exist(session, body.provider_id)
        row = LocalAuthorityRow(active=True, created_at=_now(), **body.model_dump(mode="json"))
        return LocalAuthorityRead.model_validate(
            await _insert(request, row, "local authority", body.code)
        )

    return await _create(request, body, idempotency_key, produce)


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
    return await _page(
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
    row = await session.get(LocalAuthorityRow, code)
    if row is None:
        raise _not_found("local authority", code)
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
    request: Request,
    session: SessionDep,
    code: Key,
    body: Annotated[LocalAuthorityUpdate, Body()],
) -> LocalAuthorityRead:
    if body.provider_id is not None:
        await _provider_must_exist(session, body.provider_id)
    row = await _update(request, LocalAuthorityRow, "local authority", code, body.changes())
    return LocalAuthorityRead.model_validate(row)


# --------------------------------------------------------------------------- audit trail


class RegistryActor(BaseModel):
    key_id: str = Field(description="The API key that made the change.")
    name: str = Field(description="That key's client name (names need not be unique).")


class RegistryChangeRead(BaseModel):
    seq: int
    action: str = Field(description="`created`, `changed` or `deactivated`.")
    recorded_at: datetime
    actor: RegistryActor
    changes: dict[str, dict[str, Any]] = Field(
        description='Each field that changed: `{"before": …, "after": …}`.'
    )


class RegistryChangePage(BaseModel):
    registry: str
    entry_id: str
    items: list[RegistryChangeRead]
    next_after: int | None = Field(description="Pass as `after` for the next page.")


def _change_read(row: RegistryChangeRow) -> RegistryChangeRead:
    assert row.seq is not None
    return RegistryChangeRead(
        seq=row.seq,
        action=row.action,
        recorded_at=row.recorded_at,
        actor=RegistryActor(key_id=row.actor_key_id, name=row.actor_name),
        changes=row.changes,
    )


def _register_changes(model: type[SQLModel], tag: str, what: str) -> None:
    collection = COLLECTIONS[model]

    async def entry_changes(
        session: SessionDep,
        entry_id: Key,
        after: Annotated[
            int, Query(ge=0, le=2**31 - 1, description="Only changes with seq above this.")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=500, description="At most this many.")] = 100,
    ) -> RegistryChangePage:
        if await session.get(model, entry_id) is None:
            raise _not_found(what, entry_id)
        rows = await registries.changes(session, collection, entry_id, after=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return RegistryChangePage(
            registry=collection,
            entry_id=entry_id,
            items=[_change_read(r) for r in rows],
            next_after=rows[-1].seq if more and rows else None,
        )

    router.add_api_route(
        f"/{collection}/{{entry_id}}/changes",
        entry_changes,
        methods=["GET"],
        response_model=RegistryChangePage,
        tags=[tag],
        summary=f"Who changed this {what}, when, and what (the audit trail)",
        description="In order (`seq`): each creation, change and deactivation, the API key "
        "(id and client name) that made it, and each field's value before and after.",
        name=f"{collection.replace('-', '_')}_changes",
        responses={404: {"description": f"Unknown {what}."}},
    )


for _model, _tag, _what in (
    (MediatorRow, "mediators", "mediator"),
    (VenueRow, "venues", "venue"),
    (ProviderRow, "councils and providers", "provider"),
    (LocalAuthorityRow, "councils and providers", "local authority"),
):
    _register_changes(_model, _tag, _what)
