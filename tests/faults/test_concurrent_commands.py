"""The same command sent at the same moment by two back-office clients: one wins, the other
gets a clear 409 problem saying what the referral now is (real HTTP, the stack)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from api.keys import create_key
from tests.conftest import Stack
from tests.e2e.helpers import command, create, london_at, meeting_day
from tests.factories import mediation_body
from tests.faults.conftest import ok


@pytest.fixture
async def two_clients(stack: Stack) -> Any:
    """Two back-office systems, each with its own key (and so its own audit name)."""
    clients = []
    for name in ("council-crm", "provider-crm"):
        key = await create_key(
            stack.db.sessionmaker, name=name, scopes={"referrals:read", "referrals:write"}
        )
        clients.append(
            httpx.AsyncClient(
                base_url=stack.base_url,
                timeout=30,
                headers={"Authorization": f"Bearer {key.token}"},
            )
        )
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


async def race(
    clients: list[httpx.AsyncClient], rid: str, name: str, body: dict[str, Any] | None = None
) -> tuple[httpx.Response, httpx.Response]:
    """Both clients send the command at once; returns (winner, loser)."""
    responses = await asyncio.gather(*(command(c, rid, name, body) for c in clients))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409], [r.text for r in responses]
    winner, loser = sorted(responses, key=lambda r: r.status_code)
    return winner, loser


def assert_clear_409(loser: httpx.Response, status: str, allowed: set[str]) -> None:
    assert loser.headers["content-type"].startswith("application/problem+json")
    problem = loser.json()
    assert problem["status"] == 409
    assert problem["type"].endswith("/illegal-transition")
    assert problem["current_status"] == status
    assert set(problem["allowed_commands"]) == allowed
    assert problem["detail"]


async def test_two_clients_decline_mediation_at_once_one_wins_the_other_gets_409(
    stack: Stack, two_clients: list[httpx.AsyncClient]
) -> None:
    referral = await create(stack.http, mediation_body())
    rid = referral["id"]
    await ok(await command(stack.http, rid, "information-session"))

    winner, loser = await race(two_clients, rid, "decline-mediation")
    assert winner.json()["status"] == "closed"
    assert_clear_409(loser, "closed", set())

    read = await ok(await stack.http.get(f"/v1/referrals/{rid}"))
    assert len(read["certificates"]) == 1  # one decline, one certificate
    events = (await ok(await stack.http.get(f"/v1/referrals/{rid}/events")))["items"]
    declines = [e for e in events if e["type"] == "mediation.declined"]
    assert len(declines) == 1, Counter(e["type"] for e in events)
    assert declines[0]["actor_name"] in ("council-crm", "provider-crm")


async def test_two_clients_book_meeting_at_once_one_wins_the_other_gets_409(
    stack: Stack, two_clients: list[httpx.AsyncClient]
) -> None:
    referral = await create(stack.http, mediation_body())
    rid = referral["id"]
    await ok(await command(stack.http, rid, "request-mediation"))
    mediator = await ok(  # a mediator of its own: no other test holds its diary
        await stack.http.post(
            "/v1/mediators",
            json={"name": "Ray Racer", "email": "ray@example.org", "send_trained": True},
        ),
        201,
    )
    booking = {"mediator_id": mediator["id"], "starts_at": london_at(meeting_day(), 10)}

    winner, loser = await race(two_clients, rid, "book-meeting", booking)
    booked = winner.json()
    assert booked["status"] == "meeting_booked"
    assert_clear_409(loser, "meeting_booked", set(booked["allowed_commands"]))

    read = await ok(await stack.http.get(f"/v1/referrals/{rid}"))
    assert len(read["meetings"]) == 1  # one booking, one reserved slot
