"""Every route needs a valid API key with the right scope, except the public ones."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from api import auth
from api.errors import Problem
from api.keys import (
    ALL_SCOPES,
    COUNCIL_WIDE_SCOPES,
    Principal,
    Scope,
    create_key,
    parse_token,
    revoke_key,
)
from api.main import create_app
from tests.conftest import Stack, make_settings
from tests.factories import HERTS, mediation_body

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/documents/{number}/verify"),
}
PLACEHOLDER = "00000000-0000-4000-8000-000000000000"


def operations(schema: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", PLACEHOLDER, path)


def anonymous(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.base_url, timeout=30)


async def key_for(stack: Stack, *scopes: str, name: str = "scoped", las: Any = None) -> str:
    key = await create_key(stack.db.sessionmaker, name=name, scopes=scopes, local_authorities=las)
    return key.token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.request.url, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def test_every_route_has_a_scope_mapping() -> None:
    """A new route must be given a scope (or made public) in api/auth.py's ROUTE_SCOPES."""
    app = create_app(make_settings())
    assert auth.unmapped_routes(app) == []


def test_an_unmapped_route_is_refused_to_all_but_admin() -> None:
    app = FastAPI(docs_url=None, redoc_url=None)

    @app.get("/v1/something-new")
    async def something() -> dict[str, str]:
        return {}

    assert auth.unmapped_routes(app) == [("GET", "/v1/something-new")]
    assert auth.required_scope("GET", "/v1/something-new") is None


async def test_every_route_refuses_a_request_without_a_key(stack: Stack) -> None:
    schema = (await stack.http.get("/openapi.json")).json()
    answered: set[tuple[str, str]] = set()
    async with anonymous(stack) as http:
        for method, path in operations(schema):
            response = await http.request(method, concrete(path))
            if (method, path) in PUBLIC:
                assert response.status_code not in (401, 403), (method, path, response.text)
                answered.add((method, path))
                continue
            body = assert_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert body["detail"] == auth.UNAUTHENTICATED
        for page in ("/docs", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"):
            assert (await http.get(page)).status_code == 200
    assert answered == PUBLIC


async def test_every_route_refuses_a_key_without_its_scope(stack: Stack) -> None:
    schema = (await stack.http.get("/openapi.json")).json()
    tokens: dict[str, str] = {}
    checked = 0
    async with anonymous(stack) as http:
        for method, path in operations(schema):
            needed = auth.required_scope(method, path)
            assert needed is not None, (method, path)
            if needed == auth.PUBLIC:
                continue
            if needed not in tokens:
                others = ALL_SCOPES - {needed, Scope.ADMIN.value}
                tokens[needed] = await key_for(stack, *others, name=f"lacks-{needed}")
            response = await http.request(method, concrete(path), headers=bearer(tokens[needed]))
            body = assert_problem(response, 403)
            assert body["detail"] == auth.FORBIDDEN
            assert f'scope="{needed}"' in response.headers["www-authenticate"]
            checked += 1
    assert checked == len(operations(schema)) - len(PUBLIC)


async def test_every_failure_to_authenticate_gets_the_same_answer(stack: Stack) -> None:
    token = await key_for(stack, Scope.REFERRALS_READ.value)
    parsed = parse_token(token)
    assert parsed is not None
    key_id, secret = parsed
    wrong_secret = f"srk_{key_id}.{'A' * len(secret)}"
    unknown_key = f"srk_{'0' * 16}.{secret}"
    revoked = await key_for(stack, Scope.REFERRALS_READ.value)
    revoked_id = parse_token(revoked)
    assert revoked_id is not None
    assert await revoke_key(stack.db.sessionmaker, revoked_id[0])
    bodies = []
    async with anonymous(stack) as http:
        assert (await http.get("/v1/referrals", headers=bearer(token))).status_code == 200
        for header in (
            bearer(wrong_secret),
            bearer(unknown_key),
            bearer(revoked),
            bearer("not-a-key"),
            {"Authorization": f"Basic {token}"},
        ):
            response = await http.get("/v1/referrals", headers=header)
            body = assert_problem(response, 401)
            bodies.append((body, response.headers["www-authenticate"]))
    assert all(b == bodies[0] for b in bodies)
    assert bodies[0][1] == 'Bearer realm="send-referrals", error="invalid_token"'


async def test_admin_may_do_everything_and_unknown_paths_fail_closed(stack: Stack) -> None:
    admin = await key_for(stack, Scope.ADMIN.value)
    reader = await key_for(stack, Scope.REFERRALS_READ.value)
    async with anonymous(stack) as http:
        assert (await http.get("/v1/reports/summary", headers=bearer(admin))).status_code == 200
        assert (await http.get("/v1/nothing-here")).status_code == 401
        assert (await http.get("/v1/nothing-here", headers=bearer(reader))).status_code == 403
        missing = await http.get("/v1/nothing-here", headers=bearer(admin))
        assert missing.status_code == 404
        wrong_method = await http.put("/v1/referrals", headers=bearer(reader))
        assert wrong_method.status_code == 403


async def test_the_key_s_id_is_the_audit_actor_and_its_name_is_shown(stack: Stack) -> None:
    token = await key_for(
        stack, Scope.REFERRALS_WRITE.value, Scope.REFERRALS_READ.value, name="herts-crm"
    )
    parsed = parse_token(token)
    assert parsed is not None
    async with anonymous(stack) as http:
        created = await http.post("/v1/referrals", json=mediation_body(), headers=bearer(token))
        assert created.status_code == 201, created.text
        referral_id = created.json()["id"]
        events = await http.get(f"/v1/referrals/{referral_id}/events", headers=bearer(token))
    created_event = next(e for e in events.json()["items"] if e["type"] == "referral.created")
    assert created_event["actor"] == parsed[0]
    assert created_event["actor_name"] == "herts-crm"


async def test_a_key_limited_to_a_council_cannot_reach_another_council_s_referral(
    stack: Stack,
) -> None:
    created = await stack.http.post("/v1/referrals", json=mediation_body())
    assert created.status_code == 201, created.text
    referral_id = created.json()["id"]
    everything = sorted(ALL_SCOPES - COUNCIL_WIDE_SCOPES)
    elsewhere = await key_for(stack, *everything, name="elsewhere", las=["E99999999"])
    herts = await key_for(stack, *everything, name="herts", las=[HERTS])
    async with anonymous(stack) as http:
        for path in ("", "/events", "/documents"):
            url = f"/v1/referrals/{referral_id}{path}"
            assert_problem(await http.get(url, headers=bearer(elsewhere)), 403)
            assert (await http.get(url, headers=bearer(herts))).status_code == 200
        refused = await http.post(
            f"/v1/referrals/{referral_id}/withdraw", json={}, headers=bearer(elsewhere)
        )
        assert_problem(refused, 403)


def request_for(principal: Principal | None) -> Request:
    scope: dict[str, Any] = {"type": "http", "headers": [], "state": {}}
    if principal is not None:
        scope["state"]["principal"] = principal
    return Request(scope)


def test_local_authority_helpers() -> None:
    limited = Principal("k", "herts-crm", frozenset({"referrals:read"}), frozenset({HERTS}))
    everyone = Principal("k", "provider", frozenset({"referrals:read"}), None)
    assert auth.allowed_local_authorities(request_for(limited)) == frozenset({HERTS})
    assert auth.allowed_local_authorities(request_for(everyone)) is None
    assert auth.allowed_local_authorities(request_for(None)) == frozenset()
    auth.require_local_authority(request_for(limited), HERTS)
    auth.require_local_authority(request_for(everyone), "E99999999")
    with pytest.raises(Problem) as refused:
        auth.require_local_authority(request_for(limited), "E99999999")
    assert refused.value.status == 403


async def test_openapi_documents_the_bearer_scheme_and_each_scope(stack: Stack) -> None:
    schema = (await stack.http.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    create = schema["paths"]["/v1/referrals"]["post"]
    assert create["security"] == [{"apiKey": []}]
    assert "`referrals:write`" in create["description"]
    assert schema["paths"]["/healthz"]["get"]["security"] == []


def test_routes_resolve_behind_a_root_path() -> None:
    """Mounted under a prefix (``--root-path``), the scope check still finds the route."""
    assert auth.route_path({"path": "/api/v1/referrals", "root_path": "/api"}) == "/v1/referrals"
    assert auth.route_path({"path": "/apiv1/referrals", "root_path": "/api"}) == "/apiv1/referrals"
    assert auth.route_path({"path": "/v1/referrals"}) == "/v1/referrals"
