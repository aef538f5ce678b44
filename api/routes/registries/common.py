"""What the registries share: field types, base schemas, pages, and the create/update/list
helpers that audit every change (``models/store/registries.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
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
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import principal_of
from api.bounds import cursor_signer
from api.deps import CallerDep, SessionDep, SessionmakerDep
from api.errors import Problem, validation_problem
from api.idempotency import body_hash, idempotent
from models.store import registries
from models.store.auth_tables import RegistryChangeRow
from models.store.tables import LocalAuthorityRow, MediatorRow, ProviderRow, VenueRow

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


class Page(BaseModel, Generic[Model]):
    items: list[Model]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class ListQuery(Strict):
    limit: int = Field(default=50, ge=1, le=200, description="Page size (at most 200).")
    cursor: str | None = Field(
        default=None, max_length=200, description="`next_cursor` from the previous page."
    )


# --------------------------------------------------------------------------- helpers


def now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def not_found(kind: str, key: str) -> Problem:
    return Problem(404, "Not found", f"No {kind} '{key}'.")


Row = TypeVar("Row", bound=SQLModel)


async def found(session: AsyncSession, model: type[Row], kind: str, key: str) -> Row:
    """The registry entry ``key``, or a 404 problem naming it."""
    row = await session.get(model, key)
    if row is None:
        raise not_found(kind, key)
    return row


@dataclass(frozen=True)
class Writer:
    """What a registry write needs from its request: the database, and who is writing (the
    API key's id and client name, audited with every change)."""

    maker: async_sessionmaker[AsyncSession]
    caller: str
    key_id: str
    name: str
    path: str


async def get_writer(request: Request, maker: SessionmakerDep, caller: CallerDep) -> Writer:
    principal = principal_of(request)
    return Writer(
        maker=maker,
        caller=caller,
        key_id=principal.key_id if principal is not None else caller,
        name=principal.name if principal is not None else caller,
        path=request.url.path,
    )


WriterDep = Annotated[Writer, Depends(get_writer)]


async def create(
    writer: Writer,
    body: BaseModel,
    key: str | None,
    produce: Callable[[], Awaitable[BaseModel]],
) -> JSONResponse:
    async def answer() -> tuple[int, dict[str, Any]]:
        return 201, (await produce()).model_dump(mode="json")

    return await idempotent(
        writer.maker,
        client_id=writer.caller,
        key=key,
        method="POST",
        path=writer.path,
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


def audit(writer: Writer, model: type[SQLModel]) -> registries.Audit:
    return registries.Audit(kind=COLLECTIONS[model], key_id=writer.key_id, name=writer.name)


async def insert(writer: Writer, row: SQLModel, kind: str, key: str) -> SQLModel:
    try:
        return await registries.insert(writer.maker, row, audit(writer, type(row)))
    except registries.AlreadyExists as exc:
        raise Problem(
            409, "Already registered", f"A {kind} '{key}' already exists.", type_="already-exists"
        ) from exc


async def update(
    writer: Writer,
    model: type[SQLModel],
    kind: str,
    key: str,
    changes: dict[str, Any],
    *,
    action: str = "changed",
) -> SQLModel:
    row = await registries.update(
        writer.maker, model, key, changes, audit(writer, model), action=action
    )
    if row is None:
        raise not_found(kind, key)
    return row


async def page(
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


def register_changes(router: APIRouter, model: type[SQLModel], tag: str, what: str) -> None:
    """Add to ``router`` one registry's audit trail, ``GET /v1/<registry>/{id}/changes``."""
    collection = COLLECTIONS[model]

    async def entry_changes(
        session: SessionDep,
        entry_id: Key,
        after: Annotated[
            int, Query(ge=0, le=2**31 - 1, description="Only changes with seq above this.")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=500, description="At most this many.")] = 100,
    ) -> RegistryChangePage:
        await found(session, model, what, entry_id)
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


#: (row model, tag, what): the audit-trail route of each registry, in this order.
CHANGES: list[tuple[type[SQLModel], str, str]] = [
    (MediatorRow, "mediators", "mediator"),
    (VenueRow, "venues", "venue"),
    (ProviderRow, "councils and providers", "provider"),
    (LocalAuthorityRow, "councils and providers", "local authority"),
]
