"""Webhook subscriptions cannot aim the service inward, and their deliveries tell the caller
only whether they arrived: not a port scanner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from api.keys import Scope, create_key
from api.main import create_app
from models.adapters.secrets import is_sealed
from models.store.document_tables import DeliveryRow, WebhookSubscriptionRow
from tests.conftest import Database, free_port, make_settings, serve_api

INTERNAL = [
    "http://127.0.0.1:8000/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://10.0.0.5/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
]
PUBLIC = "https://93.184.215.14/hooks/crm"  # an address literal: nothing to resolve


async def api(db: Database, allowed: tuple[str, ...]) -> AsyncIterator[httpx.AsyncClient]:
    """The API with production's webhook policy: public addresses, plus ``allowed``."""
    port = free_port()
    settings = make_settings(
        database_url=db.url,
        api_port=port,
        temporal_address="127.0.0.1:1",
        webhook_allowed_hosts=allowed,
        webhook_allow_public_addresses=True,
    )
    key = await create_key(db.sessionmaker, name="crm", scopes=[Scope.WEBHOOKS_MANAGE.value])
    async with (
        serve_api(create_app(settings), port) as base_url,
        httpx.AsyncClient(
            base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {key.token}"}
        ) as http,
    ):
        yield http


@pytest.fixture
async def strict(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    async for http in api(db, ()):
        yield http


@pytest.fixture
async def allowing_loopback(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    async for http in api(db, ("127.0.0.1",)):
        yield http


@pytest.mark.parametrize("url", INTERNAL)
async def test_a_subscription_to_an_internal_address_is_422_when_the_allowlist_does_not_name_it(
    strict: httpx.AsyncClient, url: str
) -> None:
    response = await strict.post("/v1/webhook-subscriptions", json={"url": url})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == ["body.url"]


async def test_a_subscription_to_a_public_or_allowlisted_address_is_created_with_a_sealed_secret(
    strict: httpx.AsyncClient, allowing_loopback: httpx.AsyncClient, db: Database
) -> None:
    public = await strict.post("/v1/webhook-subscriptions", json={"url": PUBLIC})
    assert public.status_code == 201, public.text
    allowed = await allowing_loopback.post(
        "/v1/webhook-subscriptions", json={"url": "http://127.0.0.1:9/hooks/crm"}
    )
    assert allowed.status_code == 201, allowed.text
    still = await allowing_loopback.post(
        "/v1/webhook-subscriptions", json={"url": "http://10.0.0.5/hook"}
    )
    assert still.status_code == 422
    async with db.sessionmaker() as session:
        row = await session.get(WebhookSubscriptionRow, public.json()["id"])
    assert row is not None
    assert is_sealed(row.secret)
    assert public.json()["secret"] not in row.secret


async def test_a_webhook_delivery_tells_the_caller_only_delivered_or_failed_when_read(
    strict: httpx.AsyncClient, db: Database
) -> None:
    created = await strict.post("/v1/webhook-subscriptions", json={"url": PUBLIC})
    subscription = created.json()["id"]
    now = datetime.now(UTC)
    async with db.sessionmaker() as session:
        for n, (status, detail) in enumerate(
            [("failed", "HTTP 401"), ("pending", "webhook endpoint unreachable (ConnectError)")]
        ):
            session.add(
                DeliveryRow(
                    key=f"event-{n}:webhook:{subscription}",
                    referral_id="r1",
                    purpose="event",
                    event_type="referral.created",
                    recipient=subscription,
                    channel="webhook",
                    subscription_id=subscription,
                    status=status,
                    attempts=1,
                    message_id=f"msg_{n}",
                    detail=detail,
                    created_at=now,
                    updated_at=now,
                )
            )
        await session.commit()
    listed = await strict.get(f"/v1/webhook-subscriptions/{subscription}/deliveries")
    assert listed.status_code == 200
    assert {d["status"] for d in listed.json()} == {"failed", "pending"}
    assert [d["detail"] for d in listed.json()] == [None, None]
    assert "401" not in listed.text
    assert "unreachable" not in listed.text
