"""``/v1/webhook-subscriptions``: back-office endpoints that receive signed events.

Each subscription has a URL, the event types it wants, optionally one council, and its own
signing secret (``whsec_…``, Standard Webhooks), shown once, in the creation response and
stored sealed with the codec key (``models/adapters/secrets.py``). Deleting a subscription disables
it: nothing more is sent to it, and its delivery history stays readable. The service
disables one by itself when its deliveries keep failing (``disabled_reason``).

A URL must reach a public address: loopback, private, link-local (cloud metadata included),
reserved and multicast addresses are refused (422) unless ``SENDMED_WEBHOOK_ALLOWED_HOSTS``
names them, and every send checks again (``models/adapters/webhooks.py``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import allowed_local_authorities
from api.deps import CallerDep, CodecDep, SessionmakerDep, SettingsDep
from api.errors import Problem, validation_problem
from api.idempotency import IdempotencyKey, body_hash, idempotent
from api.schemas import DeliveryRead, delivery_read
from models.adapters.secrets import seal
from models.adapters.webhooks import EgressPolicy, default_port, new_secret, resolve
from models.domain.referral import Identifier
from models.messages import EventType
from models.settings import Settings
from models.store.document_tables import (
    DeliveryRow,
    WebhookSubscriberHealthRow,
    WebhookSubscriptionRow,
)
from models.store.tables import LocalAuthorityRow

router = APIRouter(prefix="/webhook-subscriptions", tags=["webhooks"])
HEALTH = WebhookSubscriberHealthRow

SubscriptionId = Annotated[str, Path(max_length=64, description="The subscription's id.")]


class SubscriptionCreate(BaseModel):
    """A back-office endpoint to receive events (Standard Webhooks signing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: HttpUrl = Field(description="Where events are POSTed (https outside development).")
    event_types: tuple[EventType, ...] = Field(
        default=get_args(EventType),
        min_length=1,
        description="Which events to receive (default: all).",
    )
    local_authority: Identifier | None = Field(
        default=None, description="Only this council's referrals (default: every council)."
    )
    description: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None


class SubscriptionRead(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    url: str
    event_types: list[str]
    local_authority: str | None
    description: str | None
    active: bool
    created_at: datetime
    disabled_at: datetime | None = None
    disabled_reason: str | None = Field(
        default=None,
        description="Why the service disabled it (its deliveries kept failing); null when "
        "active or deleted by its owner.",
    )


class SubscriptionCreated(SubscriptionRead):
    secret: str = Field(
        description="The signing secret (whsec_…). Shown only now: store it to verify the "
        "webhook-signature header of every delivery."
    )


class SubscriptionList(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[SubscriptionRead]


def subscription_read(
    row: WebhookSubscriptionRow, health: WebhookSubscriberHealthRow | None = None
) -> SubscriptionRead:
    return SubscriptionRead(
        id=row.id,
        url=row.url,
        event_types=list(row.event_types),
        local_authority=row.local_authority,
        description=row.description,
        active=row.active,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        disabled_reason=None if row.active or health is None else health.disabled_reason,
    )


async def _health(
    maker: async_sessionmaker[AsyncSession], subscription_id: str
) -> WebhookSubscriberHealthRow | None:
    async with maker() as session:
        found: WebhookSubscriberHealthRow | None = await session.get(
            WebhookSubscriberHealthRow, subscription_id
        )
        return found


async def check_destination(settings: Settings, url: HttpUrl) -> None:
    """422 unless ``url`` reaches an address webhooks may go to (checked again at send)."""
    policy = EgressPolicy.from_entries(
        settings.webhook_allowed_hosts, public=settings.webhook_allow_public_addresses
    )
    host = url.host or ""
    addresses = await resolve(host, default_port(url.scheme, url.port))
    refused = policy.refusal(host, addresses)
    if refused is not None:
        raise validation_problem([{"field": "body.url", "message": refused}])


def _visible(request: Request, row: WebhookSubscriptionRow) -> bool:
    """A key limited to some councils sees only subscriptions for one of them."""
    allowed = allowed_local_authorities(request)
    return allowed is None or (row.local_authority is not None and row.local_authority in allowed)


async def _get(
    request: Request, maker: async_sessionmaker[AsyncSession], subscription_id: str
) -> WebhookSubscriptionRow:
    async with maker() as session:
        row: WebhookSubscriptionRow | None = await session.get(
            WebhookSubscriptionRow, subscription_id
        )
    if row is None or not _visible(request, row):
        raise Problem(404, "Not found", f"No webhook subscription {subscription_id}.")
    return row


@router.post(
    "",
    status_code=201,
    response_model=SubscriptionCreated,
    summary="Subscribe an endpoint to events (the response holds its signing secret, once)",
    responses={422: {"description": "Invalid subscription (problem+json naming each field)."}},
)
async def create_subscription(
    request: Request,
    body: Annotated[SubscriptionCreate, Body()],
    settings: SettingsDep,
    maker: SessionmakerDep,
    caller: CallerDep,
    codec: CodecDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    payload = body.model_dump(mode="json", exclude_none=True)
    allowed = allowed_local_authorities(request)
    if allowed is not None and body.local_authority not in allowed:
        raise Problem(
            403,
            "Forbidden",
            "This API key may subscribe only to its own councils' events: "
            "set local_authority to one of them.",
        )
    if settings.environment == "production" and body.url.scheme != "https":
        raise validation_problem([{"field": "body.url", "message": "must be an https URL"}])
    if len(set(body.event_types)) != len(body.event_types):
        raise validation_problem([{"field": "body.event_types", "message": "each type once"}])
    await check_destination(settings, body.url)
    keyring = codec.keyring

    async def produce() -> tuple[int, dict[str, Any]]:
        async with maker() as session:
            if body.local_authority is not None:
                council = await session.get(LocalAuthorityRow, body.local_authority)
                if council is None:
                    raise validation_problem(
                        [
                            {
                                "field": "body.local_authority",
                                "message": f"unknown local authority '{body.local_authority}'",
                            }
                        ]
                    )
            secret = new_secret()
            subscription_id = f"whsub_{uuid.uuid4().hex}"
            row = WebhookSubscriptionRow(
                id=subscription_id,
                url=str(body.url),
                secret=seal(keyring, secret, subscription_id),
                event_types=list(body.event_types),
                local_authority=body.local_authority,
                description=body.description,
                client_id=caller,
                active=True,
                created_at=datetime.now(UTC),
            )
            session.add(row)
            await session.commit()
        created = SubscriptionCreated(**subscription_read(row).model_dump(), secret=secret)
        return 201, created.model_dump(mode="json")

    return await idempotent(
        maker,
        client_id=caller,
        key=idempotency_key,
        method="POST",
        path=request.url.path,
        request_hash=body_hash(payload),
        produce=produce,
    )


@router.get("", response_model=SubscriptionList, summary="Webhook subscriptions (no secrets)")
async def list_subscriptions(
    request: Request,
    maker: SessionmakerDep,
    active: Annotated[bool | None, Query(description="Only active (or disabled) ones.")] = None,
) -> SubscriptionList:
    async with maker() as session:
        stmt = select(WebhookSubscriptionRow).order_by(
            col(WebhookSubscriptionRow.created_at), col(WebhookSubscriptionRow.id)
        )
        if active is not None:
            stmt = stmt.where(col(WebhookSubscriptionRow.active).is_(active))
        rows = (await session.exec(stmt)).all()
        health = {h.subscription_id: h for h in (await session.exec(select(HEALTH))).all()}
    return SubscriptionList(
        items=[subscription_read(r, health.get(r.id)) for r in rows if _visible(request, r)]
    )


@router.get(
    "/{subscription_id}",
    response_model=SubscriptionRead,
    summary="One webhook subscription (no secret)",
    responses={404: {"description": "Unknown subscription."}},
)
async def get_subscription(
    request: Request, maker: SessionmakerDep, subscription_id: SubscriptionId
) -> SubscriptionRead:
    row = await _get(request, maker, subscription_id)
    return subscription_read(row, await _health(maker, subscription_id))


@router.delete(
    "/{subscription_id}",
    status_code=204,
    response_class=Response,
    summary="Disable a subscription: nothing more is sent to it (its history stays)",
    responses={404: {"description": "Unknown subscription."}},
)
async def delete_subscription(
    request: Request, maker: SessionmakerDep, subscription_id: SubscriptionId
) -> Response:
    async with maker() as session:
        row: WebhookSubscriptionRow | None = await session.get(
            WebhookSubscriptionRow, subscription_id
        )
        if row is None or not _visible(request, row):
            raise Problem(404, "Not found", f"No webhook subscription {subscription_id}.")
        if row.active:
            row.active = False
            row.disabled_at = datetime.now(UTC)
            session.add(row)
            await session.commit()
    return Response(status_code=204)


@router.get(
    "/{subscription_id}/deliveries",
    response_model=list[DeliveryRead],
    summary="The latest deliveries to this subscription and their state",
    responses={404: {"description": "Unknown subscription."}},
)
async def list_subscription_deliveries(
    request: Request,
    maker: SessionmakerDep,
    subscription_id: SubscriptionId,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryRead]:
    await _get(request, maker, subscription_id)
    async with maker() as session:
        rows = (
            await session.exec(
                select(DeliveryRow)
                .where(col(DeliveryRow.subscription_id) == subscription_id)
                .order_by(col(DeliveryRow.created_at).desc(), col(DeliveryRow.key))
                .limit(limit)
            )
        ).all()
    return [delivery_read(r) for r in rows]
