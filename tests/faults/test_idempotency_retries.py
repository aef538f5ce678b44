"""Every POST retried with its Idempotency-Key - at once, concurrently, and after the first
response was lost to a client timeout - does its work once (over real HTTP, on the stack)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from api.auth import iter_routes, normalise
from api.idempotency import key_digest
from api.main import create_app
from api.routes.referrals import ID_NAMESPACE
from models.messages import workflow_id
from tests.conftest import Stack, make_settings
from tests.e2e.helpers import create
from tests.factories import council_bodies, mediation_body
from tests.faults.conftest import ok, wait_until

# POSTs that change nothing: they compute an answer from the body alone, so a retry is safe
# without a key and they take none (checked below against the OpenAPI schema).
PURE = {
    "/v1/timescales": "the deadline calculator: a pure function of its body",
    "/codec/encode": "the payload codec: encrypts the given payloads, stores nothing",
    "/codec/decode": "the payload codec: decrypts the given payloads, stores nothing",
    "/codec/{}/encode": "the development Web UI's path to /codec/encode",
    "/codec/{}/decode": "the development Web UI's path to /codec/decode",
}
# Every POST that creates something, and the test below that retries it.
REGISTRY = "test_registry_and_subscription_posts_retried_concurrently_create_one"
COVERED = {
    "/v1/referrals": "test_create_referral_retried_concurrently_and_after_a_lost_response",
    "/v1/referrals/{}/{command}": "test_commands_retried_concurrently_and_after_a_lost_response",
    "/v1/mediators": REGISTRY,
    "/v1/venues": REGISTRY,
    "/v1/providers": REGISTRY,
    "/v1/local-authorities": REGISTRY,
    "/v1/webhook-subscriptions": REGISTRY,
    # The link pages: each answer is sent with its link's own Idempotency-Key (tests/pages).
    "/respond/{}": "tests/pages: a question step sends nothing (a redirect to the next step)",
    "/respond/{}/{}": "tests/pages/test_link_pages.py: replayed and double submissions record once",
}
RETRIES = 3


async def post_with_lost_response(
    stack: Stack, path: str, body: Any, key: str, applied: Callable[[], Awaitable[bool]]
) -> None:
    """The API does the work, but its answer never reaches the client: the client sends the
    request, waits until the work is visible, then hangs up without reading the response (as
    a client that timed out or crashed would)."""
    url = httpx.URL(stack.base_url)
    assert url.port is not None
    payload = json.dumps(body).encode() if body is not None else b""
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {url.host}:{url.port}",
        f"Authorization: {stack.http.headers['Authorization']}",
        f"Idempotency-Key: {key}",
        *(["Content-Type: application/json"] if body is not None else []),
        f"Content-Length: {len(payload)}",
        "Connection: close",
    ]
    _reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write("\r\n".join(head).encode() + b"\r\n\r\n" + payload)
        await writer.drain()
        await wait_until(applied, f"POST {path} applied")
    finally:
        writer.close()
        await writer.wait_closed()


async def concurrently(stack: Stack, path: str, body: Any, key: str) -> list[httpx.Response]:
    headers = {"Idempotency-Key": key}
    return list(
        await asyncio.gather(
            *(stack.http.post(path, json=body, headers=headers) for _ in range(RETRIES))
        )
    )


def same_answer(responses: list[httpx.Response], status: int) -> dict[str, Any]:
    assert [r.status_code for r in responses] == [status] * len(responses), [
        r.text for r in responses
    ]
    bodies = [r.json() for r in responses]
    assert all(b == bodies[0] for b in bodies), bodies
    first: dict[str, Any] = bodies[0]
    return first


async def timeline_types(stack: Stack, referral_id: str) -> Counter[str]:
    events = (await ok(await stack.http.get(f"/v1/referrals/{referral_id}/events")))["items"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    return Counter(e["type"] for e in events)


def test_every_post_route_is_retried_here_or_pure() -> None:
    app = create_app(make_settings())
    posts = {normalise(path) for methods, path in iter_routes(app) if "POST" in methods}
    commands = {p for p in posts if p.startswith("/v1/referrals/{}/")}
    assert commands, "the referral commands"
    posts = (posts - commands) | {"/v1/referrals/{}/{command}"}
    assert posts == set(COVERED) | set(PURE), "a new POST route needs an idempotency test here"


async def test_create_referral_retried_concurrently_and_after_a_lost_response(
    stack: Stack,
) -> None:
    body = mediation_body()
    key = f"create-{uuid.uuid4()}"
    expected_id = str(uuid.uuid5(ID_NAMESPACE, key_digest(stack.key_id, key)))

    async def exists() -> bool:
        return (await stack.http.get(f"/v1/referrals/{expected_id}")).status_code == 200

    # The first answer is lost; then three retries at once.
    await post_with_lost_response(stack, "/v1/referrals", body, key, exists)
    responses = await concurrently(stack, "/v1/referrals", body, key)
    created = same_answer(responses, 201)
    assert created["id"] == expected_id
    again = await stack.http.post("/v1/referrals", json=body, headers={"Idempotency-Key": key})
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == created

    # Three at once, none lost.
    key = f"create-{uuid.uuid4()}"
    responses = await concurrently(stack, "/v1/referrals", body, key)
    assert same_answer(responses, 201)["id"] == str(
        uuid.uuid5(ID_NAMESPACE, key_digest(stack.key_id, key))
    )

    types = await timeline_types(stack, expected_id)
    assert types["referral.created"] == 1


async def test_commands_retried_concurrently_and_after_a_lost_response(stack: Stack) -> None:
    referral = await create(stack.http, mediation_body())
    rid = referral["id"]

    # Concurrent retries of one command: one update, every caller gets its answer.
    session_key = f"session-{uuid.uuid4()}"
    path = f"/v1/referrals/{rid}/information-session"
    answered = same_answer(await concurrently(stack, path, None, session_key), 200)
    assert answered["status"] == "awaiting_family_decision"

    # The answer to a decline is lost; the retry gets it, and nothing is issued twice.
    decline_key = f"decline-{uuid.uuid4()}"
    path = f"/v1/referrals/{rid}/decline-mediation"

    async def closed() -> bool:
        read = await ok(await stack.http.get(f"/v1/referrals/{rid}"))
        return bool(read["status"] == "closed")

    await post_with_lost_response(stack, path, None, decline_key, closed)
    responses = await concurrently(stack, path, None, decline_key)
    declined = same_answer(responses, 200)
    assert all(r.headers.get("Idempotent-Replayed") == "true" for r in responses)
    assert declined["status"] == "closed"
    (certificate,) = declined["certificates"]

    types = await timeline_types(stack, rid)
    repeated = {t: n for t, n in types.items() if n > 1 and t != "referral.status_changed"}
    assert not repeated, types
    assert types["referral.status_changed"] == 2  # to awaiting decision, then closed

    # A closed referral's workflow ends once its documents are dispatched.
    await asyncio.wait_for(stack.temporal.get_workflow_handle(workflow_id(rid)).result(), 60)
    mails = [m for m in stack.smtp.sink.messages() if certificate["number"] in m.message["Subject"]]
    assert sorted(r for m in mails for r in m.rcpt_tos) == [
        "grace.parent@example.org",
        "sam.officer@example.gov.uk",
    ]


def _mediator() -> dict[str, Any]:
    name = f"Robin Retry {uuid.uuid4().hex[:8]}"
    return {"name": name, "email": "robin@example.org", "send_trained": True}


def _venue() -> dict[str, Any]:
    return {
        "name": f"Retry Hall {uuid.uuid4().hex[:8]}",
        "address": "1 Lane",
        "kind": "church_hall",
    }


def _provider() -> dict[str, Any]:
    return council_bodies()[0]


def _council() -> dict[str, Any]:
    return {**council_bodies()[1], "provider_id": "kids"}  # the seeded provider


def _subscription() -> dict[str, Any]:
    # The stack is shared: limited to a council of its own, so that no other test's
    # referral is ever delivered to this (unreachable) endpoint.
    # Loopback only: tests never address a host off this machine (nothing listens there).
    return {"url": f"http://127.0.0.1:9/{uuid.uuid4().hex}"}


# path, a fresh body each call, the field that tells one creation from another
REGISTRY_POSTS: list[tuple[str, Callable[[], dict[str, Any]], str]] = [
    ("/v1/mediators", _mediator, "name"),
    ("/v1/venues", _venue, "name"),
    ("/v1/providers", _provider, "id"),
    ("/v1/local-authorities", _council, "code"),
    ("/v1/webhook-subscriptions", _subscription, "url"),
]


@pytest.mark.parametrize(
    ("path", "make", "unique"), REGISTRY_POSTS, ids=[p for p, _, _ in REGISTRY_POSTS]
)
async def test_registry_and_subscription_posts_retried_concurrently_create_one(
    stack: Stack, path: str, make: Callable[[], dict[str, Any]], unique: str
) -> None:
    extra: dict[str, Any] = {}
    if path == "/v1/webhook-subscriptions":
        council = await ok(await stack.http.post("/v1/local-authorities", json=_council()), 201)
        extra["local_authority"] = council["code"]

    # Concurrent retries: every caller gets the one creation's answer.
    body = {**make(), **extra}
    key = f"retry-{uuid.uuid4()}"
    created = same_answer(await concurrently(stack, path, body, key), 201)
    matching = [i for i in await all_items(stack, path) if i[unique] == body[unique]]
    assert [i["id" if "id" in i else "code"] for i in matching] == [
        created["id" if "id" in created else "code"]
    ]

    # The first answer lost to a client timeout: the retry replays it, nothing is added.
    first = created
    body = {**make(), **extra}
    key = f"lost-{uuid.uuid4()}"

    async def created_once() -> bool:
        return any(i[unique] == body[unique] for i in await all_items(stack, path))

    await post_with_lost_response(stack, path, body, key, created_once)
    retried = await concurrently(stack, path, body, key)
    assert all(r.headers.get("Idempotent-Replayed") == "true" for r in retried)
    answer = same_answer(retried, 201)
    matching = [i for i in await all_items(stack, path) if i[unique] == body[unique]]
    assert len(matching) == 1, matching
    assert answer[unique] == body[unique]
    if path == "/v1/webhook-subscriptions":  # disabled again: the stack is shared
        for subscription in (first, answer):
            deleted = await stack.http.delete(f"{path}/{subscription['id']}")
            assert deleted.status_code in (200, 204), deleted.text


async def all_items(stack: Stack, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200} if path != "/v1/webhook-subscriptions" else {}
    while True:
        page = await ok(await stack.http.get(path, params=params))
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items
        params = {**params, "cursor": cursor}
