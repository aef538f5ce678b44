"""Idempotency records and the audit actor belong to the API key (its id), never its name:
two clients that share a name never meet, and an old key after the 30-day purge neither
fails nor reaches another client's referral."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import delete

from api.keys import Scope, create_key
from models.store.tables import IdempotencyRow, table_of
from tests.conftest import Stack
from tests.e2e.helpers import command, ok
from tests.factories import HERTS, mediation_body

SCOPES = [Scope.REFERRALS_READ.value, Scope.REFERRALS_WRITE.value]


async def client_named(stack: Stack, name: str) -> httpx.AsyncClient:
    key = await create_key(
        stack.db.sessionmaker, name=name, scopes=SCOPES, local_authorities=[HERTS]
    )
    return httpx.AsyncClient(
        base_url=stack.base_url, timeout=60, headers={"Authorization": f"Bearer {key.token}"}
    )


async def test_two_clients_with_the_same_name_never_share_idempotency_records_when_keys_collide(
    stack: Stack,
) -> None:
    key = f"same-{uuid.uuid4()}"
    headers = {"Idempotency-Key": key}
    async with (
        await client_named(stack, "crm") as first,
        await client_named(stack, "crm") as second,
    ):
        mine = await ok(
            await first.post("/v1/referrals", json=mediation_body(), headers=headers), 201
        )
        # Same name, same Idempotency-Key, same body: its own referral, not the other's.
        theirs = await ok(
            await second.post("/v1/referrals", json=mediation_body(), headers=headers), 201
        )
        # Same name, same Idempotency-Key, another body: no 422, a referral of its own.
        other = mediation_body(mediation_issues=["Another disagreement entirely"])
        third = await second.post(
            "/v1/referrals", json=other, headers={"Idempotency-Key": f"{key}-2"}
        )
        assert third.status_code == 201, third.text
        again = await first.post("/v1/referrals", json=other, headers=headers)
    assert mine["id"] != theirs["id"]
    assert again.status_code == 422  # the first client's own key, reused with another body


async def test_an_old_idempotency_key_after_the_purge_answers_its_own_referral_or_422_when_retried(
    stack: Stack,
) -> None:
    key = f"old-{uuid.uuid4()}"
    headers = {"Idempotency-Key": key}
    async with await client_named(stack, "crm") as first, await client_named(stack, "crm") as other:
        created = await ok(
            await first.post("/v1/referrals", json=mediation_body(), headers=headers), 201
        )
        await ok(await command(first, created["id"], "withdraw", {}))  # the workflow closes
        # 30 days on, the idempotency records are purged.
        async with stack.db.sessionmaker() as session:
            table = table_of(IdempotencyRow)
            await session.exec(delete(table).where(table.c.key == key))
            await session.commit()

        same = await first.post("/v1/referrals", json=mediation_body(), headers=headers)
        changed = await first.post(
            "/v1/referrals",
            json=mediation_body(mediation_issues=["Something else"]),
            headers=headers,
        )
        elsewhere = await other.post("/v1/referrals", json=mediation_body(), headers=headers)
    assert same.status_code in (200, 201), same.text
    assert same.json()["id"] == created["id"]
    assert same.json()["status"] == "closed"
    assert changed.status_code == 422, changed.text
    assert changed.json()["type"].endswith("/idempotency-key-reused")
    assert elsewhere.status_code == 201, elsewhere.text
    assert elsewhere.json()["id"] != created["id"]
