"""A key limited to one council stays inside it: the authorisation matrix.

Every operation of the live ``/openapi.json`` is called with keys limited to council B,
aimed at council A's referral, documents, webhook subscription, council, provider and the
shared registries, and at the codec with one of A's payloads. Nothing of A may be read or
changed. Two B keys are used: one created today (it cannot hold the council-wide scopes) and
one stored before that rule with every scope, ``admin`` included (those are void: 403 naming
why). A new operation fails the test until the table below says what it may do.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from api import auth
from api.keys import ALL_SCOPES, COUNCIL_WIDE_SCOPES, create_key, main, new_token, secret_digest
from models.store.auth_tables import ApiKeyRow
from tests.conftest import Stack
from tests.e2e.helpers import command, create, ok
from tests.factories import council_bodies, mediation_body


@dataclass
class World:
    """Council A's things, which council B's keys must not reach."""

    a: str
    b: str
    provider_a: str
    referral: str
    document: str
    subscription: str
    mediator: str
    venue: str
    payload: dict[str, Any]
    before: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Probe:
    """One request and what a council-B key may get: ``refused`` (403/404), or ``open``
    (council-free data: 200), or ``filtered`` (200 with none of A's ids in it)."""

    method: str
    path: str
    expect: str
    params: dict[str, Any] | None = None
    body: Any = None


REFUSED = {403, 404}


def probes(w: World) -> dict[tuple[str, str], list[Probe]]:
    """Every operation -> what it is sent (aimed at A) and what B may get."""
    ref, doc, sub = w.referral, w.document, w.subscription
    refused = "refused"

    def p(method: str, path: str, expect: str = refused, **kw: Any) -> Probe:
        return Probe(method, path, expect, **kw)

    table: dict[tuple[str, str], list[Probe]] = {
        ("POST", "/v1/referrals"): [
            p("POST", "/v1/referrals", body=mediation_body(local_authority=w.a))
        ],
        ("GET", "/v1/referrals"): [
            p("GET", "/v1/referrals", "filtered"),
            p("GET", "/v1/referrals", params={"local_authority": w.a}),
        ],
        ("GET", "/v1/referrals/{referral_id}"): [p("GET", f"/v1/referrals/{ref}")],
        ("GET", "/v1/referrals/{referral_id}/events"): [p("GET", f"/v1/referrals/{ref}/events")],
        ("GET", "/v1/referrals/{referral_id}/documents"): [
            p("GET", f"/v1/referrals/{ref}/documents")
        ],
        ("GET", "/v1/referrals/{referral_id}/deliveries"): [
            p("GET", f"/v1/referrals/{ref}/deliveries")
        ],
        ("GET", "/v1/referrals/{referral_id}/export"): [p("GET", f"/v1/referrals/{ref}/export")],
        ("GET", "/v1/documents/{number}"): [p("GET", f"/v1/documents/{doc}")],
        ("GET", "/v1/documents/{number}/calendar.ics"): [
            p("GET", f"/v1/documents/{doc}/calendar.ics")
        ],
        ("POST", "/v1/timescales"): [
            p("POST", "/v1/timescales", "open", body={"decision_letter_date": "2026-11-02"})
        ],
        ("GET", "/v1/reports/summary"): [
            p("GET", "/v1/reports/summary", "filtered"),
            p("GET", "/v1/reports/summary", params={"local_authority": w.a}),
        ],
        ("GET", "/v1/reports/summary.csv"): [
            p("GET", "/v1/reports/summary.csv", "filtered"),
            p("GET", "/v1/reports/summary.csv", params={"local_authority": w.a}),
        ],
        ("POST", "/v1/webhook-subscriptions"): [
            p(
                "POST",
                "/v1/webhook-subscriptions",
                body={"url": "http://127.0.0.1:9/hooks/b", "local_authority": w.a},
            )
        ],
        ("GET", "/v1/webhook-subscriptions"): [p("GET", "/v1/webhook-subscriptions", "filtered")],
        ("GET", "/v1/webhook-subscriptions/{subscription_id}"): [
            p("GET", f"/v1/webhook-subscriptions/{sub}")
        ],
        ("DELETE", "/v1/webhook-subscriptions/{subscription_id}"): [
            p("DELETE", f"/v1/webhook-subscriptions/{sub}")
        ],
        ("GET", "/v1/webhook-subscriptions/{subscription_id}/deliveries"): [
            p("GET", f"/v1/webhook-subscriptions/{sub}/deliveries")
        ],
        ("GET", "/metrics"): [p("GET", "/metrics")],
        ("POST", "/codec/encode"): [p("POST", "/codec/encode", body=w.payload)],
        ("POST", "/codec/decode"): [p("POST", "/codec/decode", body=w.payload)],
        # councils and the provider that serves A
        ("POST", "/v1/local-authorities"): [
            p(
                "POST",
                "/v1/local-authorities",
                body={"code": f"X{uuid.uuid4().hex[:6]}", "name": "X", "provider_id": w.provider_a},
            )
        ],
        ("PATCH", "/v1/local-authorities/{code}"): [
            p("PATCH", f"/v1/local-authorities/{w.a}", body={"active": False})
        ],
        ("POST", "/v1/providers"): [
            p("POST", "/v1/providers", body=council_bodies()[0]),
        ],
        ("PATCH", "/v1/providers/{provider_id}"): [
            p("PATCH", f"/v1/providers/{w.provider_a}", body={"email": "attacker@b.example.org"})
        ],
        # mediators and venues serve every council
        ("POST", "/v1/mediators"): [
            p("POST", "/v1/mediators", body={"name": "B Mediator", "send_trained": True})
        ],
        ("PATCH", "/v1/mediators/{mediator_id}"): [
            p("PATCH", f"/v1/mediators/{w.mediator}", body={"email": "attacker@b.example.org"})
        ],
        ("DELETE", "/v1/mediators/{mediator_id}"): [p("DELETE", f"/v1/mediators/{w.mediator}")],
        ("POST", "/v1/venues"): [
            p(
                "POST",
                "/v1/venues",
                body={"name": "B Hall", "address": "1 B Street", "kind": "community_centre"},
            )
        ],
        ("PATCH", "/v1/venues/{venue_id}"): [
            p("PATCH", f"/v1/venues/{w.venue}", body={"address": "Somewhere else"})
        ],
        ("DELETE", "/v1/venues/{venue_id}"): [p("DELETE", f"/v1/venues/{w.venue}")],
    }
    # Registries and their audit trails are read by whoever books meetings: council-free.
    for collection, entry in (
        ("mediators", w.mediator),
        ("venues", w.venue),
        ("providers", w.provider_a),
        ("local-authorities", w.a),
    ):
        param = "code" if collection == "local-authorities" else f"{collection[:-1]}_id"
        table[("GET", f"/v1/{collection}")] = [p("GET", f"/v1/{collection}", "open")]
        table[("GET", f"/v1/{collection}/{{{param}}}")] = [
            p("GET", f"/v1/{collection}/{entry}", "open")
        ]
        table[("GET", f"/v1/{collection}/{{entry_id}}/changes")] = [
            p("GET", f"/v1/{collection}/{entry}/changes", "open")
        ]
    # Every command on A's referral.
    for name, body in COMMAND_BODIES.items():
        table[("POST", f"/v1/referrals/{{referral_id}}/{name}")] = [
            p("POST", f"/v1/referrals/{ref}/{name}", body=body)
        ]
    return table


COMMAND_BODIES: dict[str, Any] = {
    "action": {},
    "information-session": {},
    "decline-mediation": {},
    "request-mediation": {},
    "la-unable-to-arrange": {},
    "party-response": {"party_id": "la", "response": "accepted"},
    "book-meeting": {"mediator_id": "x", "starts_at": "2030-01-07T10:00:00+00:00"},
    "cancel-meeting": {},
    "record-meeting": {"outcome": "no_agreement"},
    "sign-agreement": {},
    "complete-action": {"action_id": "a1"},
    "withdraw": {},
    "meeting-reply": {"meeting_id": "meeting-1", "invitee": "la", "answer": "attending"},
}


def operations(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
        and auth.required_scope(method.upper(), path) != auth.PUBLIC
    }


async def legacy_key(stack: Stack, council: str) -> str:
    """A key stored before council-limited keys were refused the council-wide scopes."""
    key_id, secret, token = new_token()
    async with stack.db.sessionmaker() as session:
        session.add(
            ApiKeyRow(
                key_id=key_id,
                name="b-legacy",
                secret_sha256=secret_digest(secret),
                scopes=sorted(ALL_SCOPES),
                local_authorities=[council],
                created_at=datetime.now(UTC),
            )
        )
        await session.commit()
    return token


@pytest.fixture
async def world(stack: Stack) -> World:
    http = stack.http
    provider, council_a = council_bodies(name="Council A")
    await ok(await http.post("/v1/providers", json=provider), 201)
    await ok(await http.post("/v1/local-authorities", json=council_a), 201)
    provider_b, council_b = council_bodies(name="Council B")
    await ok(await http.post("/v1/providers", json=provider_b), 201)
    await ok(await http.post("/v1/local-authorities", json=council_b), 201)
    a = council_a["code"]
    referral = await create(http, mediation_body(local_authority=a))
    await ok(await command(http, referral["id"], "information-session"))
    decided = await ok(await command(http, referral["id"], "decline-mediation"))
    subscription = await ok(
        await http.post(
            "/v1/webhook-subscriptions",
            json={"url": stack.hooks.url(f"a-{uuid.uuid4().hex[:6]}"), "local_authority": a},
        ),
        201,
    )
    mediator = await ok(
        await http.post("/v1/mediators", json={"name": "Shared Mediator", "send_trained": True}),
        201,
    )
    venue = await ok(
        await http.post(
            "/v1/venues",
            json={"name": "Shared Hall", "address": "1 High Street", "kind": "community_centre"},
        ),
        201,
    )
    secret = Payload(
        metadata={"encoding": b"json/plain"}, data=json.dumps({"referral": referral["id"]}).encode()
    )
    sealed = stack.settings.payload_codec().encrypt(secret)
    world = World(
        a=a,
        b=council_b["code"],
        provider_a=provider["id"],
        referral=referral["id"],
        document=decided["certificate"]["number"],
        subscription=subscription["id"],
        mediator=mediator["id"],
        venue=venue["id"],
        payload={"payloads": [json_format.MessageToDict(sealed)]},
    )
    world.before = await snapshot(http, world)
    return world


async def snapshot(http: httpx.AsyncClient, w: World) -> dict[str, Any]:
    """What B must not change: A's council, provider, referral, subscription, the registries."""
    referral = await ok(await http.get(f"/v1/referrals/{w.referral}"))
    return {
        "council": await ok(await http.get(f"/v1/local-authorities/{w.a}")),
        "provider": await ok(await http.get(f"/v1/providers/{w.provider_a}")),
        "referral": {k: referral[k] for k in ("status", "allowed_commands")},
        "subscription": await ok(await http.get(f"/v1/webhook-subscriptions/{w.subscription}")),
        "mediator": await ok(await http.get(f"/v1/mediators/{w.mediator}")),
        "venue": await ok(await http.get(f"/v1/venues/{w.venue}")),
        "mediators": len((await ok(await http.get("/v1/mediators?limit=200")))["items"]),
        "venues": len((await ok(await http.get("/v1/venues?limit=200")))["items"]),
    }


def a_ids(w: World) -> list[str]:
    return [w.referral, w.document, w.subscription, w.a]


async def test_a_key_limited_to_another_council_reaches_nothing_of_a_council_when_enumerating_every_operation(  # noqa: E501
    stack: Stack, world: World
) -> None:
    schema = (await stack.http.get("/openapi.json")).json()
    table = probes(world)
    assert operations(schema) == set(table), "every operation of /openapi.json is probed"
    allowed_for_limited = sorted(ALL_SCOPES - COUNCIL_WIDE_SCOPES)
    fresh = await create_key(
        stack.db.sessionmaker, name="b-crm", scopes=allowed_for_limited, local_authorities=[world.b]
    )
    tokens = {"b-crm": fresh.token, "b-legacy": await legacy_key(stack, world.b)}
    breaches: list[str] = []
    checked = 0
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
        for (method, path), calls in sorted(table.items()):
            for who, token in tokens.items():
                for call in calls:
                    response = await http.request(
                        call.method,
                        call.path,
                        params=call.params,
                        json=call.body,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    checked += 1
                    if verdict := judge(call, response, world):
                        breaches.append(f"{who}: {method} {path} {call.params or ''}: {verdict}")
    assert not breaches, "\n".join(breaches)
    assert checked >= 2 * len(table)
    assert await snapshot(stack.http, world) == world.before, "nothing of A's changed"


def judge(call: Probe, response: httpx.Response, w: World) -> str | None:
    """None if the answer is allowed, else what went wrong."""
    status = response.status_code
    if call.expect == "refused":
        if status not in REFUSED:
            return f"{status} (expected 403/404) {response.text[:200]}"
        return None
    if status != 200:
        return f"{status} (expected 200) {response.text[:200]}"
    if call.expect == "filtered":
        leaked = [i for i in a_ids(w) if i in response.text]
        if leaked:
            return f"answer holds council A's {leaked}"
        if call.path.startswith("/v1/reports/summary.csv"):
            return None if "referrals.received,0\r\n" in response.text else "other councils"
        if call.path == "/v1/reports/summary":
            received = response.json()["referrals"]["received"]
            return None if received == 0 else f"counts {received} referrals of other councils"
    return None


def _problem_detail(response: httpx.Response) -> str:
    detail: str = response.json()["detail"]
    return detail


@pytest.mark.parametrize("scope", sorted(COUNCIL_WIDE_SCOPES))
async def test_a_council_wide_scope_is_void_for_a_key_limited_to_councils_with_a_403_naming_why(
    stack: Stack, world: World, scope: str
) -> None:
    token = await legacy_key(stack, world.b)
    requests: dict[str, Callable[[httpx.AsyncClient], Any]] = {
        "registries:write": lambda h: h.patch(
            f"/v1/providers/{world.provider_a}", json={"name": "Hijacked"}
        ),
        "admin": lambda h: h.patch(f"/v1/local-authorities/{world.a}", json={"active": False}),
        "codec": lambda h: h.post("/codec/decode", json=world.payload),
        "metrics:read": lambda h: h.get("/metrics"),
    }
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=stack.base_url, headers=headers, timeout=30) as http:
        response = await requests[scope](http)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "limited to councils" in _problem_detail(response)


@pytest.mark.parametrize("scope", sorted(COUNCIL_WIDE_SCOPES))
def test_creating_a_council_limited_key_with_a_council_wide_scope_is_refused_when_using_the_cli(
    scope: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENDMED_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    argv = ["create", "--name", "b-crm", "--scope", "referrals:read", "--scope", scope]
    code = main([*argv, "--local-authority", "E10000016"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"cannot hold {scope}" in err
    assert "use a key for all councils" in err
