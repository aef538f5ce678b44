"""A verified API key is trusted for ``api_key_cache_seconds``, then looked up again.

Only the exact token that verified is remembered, only successes are, and a revocation takes
effect once the entry expires (at once with the cache off).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from api import auth, keys
from api.keys import Principal, Scope, create_key, parse_token, revoke_key
from api.main import create_app
from tests.conftest import Stack, free_port, make_settings, migrated_database, serve_api
from workflows.client import connect

READER = Principal(
    key_id="0123456789abcdef",
    name="crm",
    scopes=frozenset({Scope.REFERRALS_READ.value}),
    local_authorities=None,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_verified_token_is_kept_for_the_ttl_and_no_longer() -> None:
    clock = Clock()
    keys = auth.VerifiedKeys(5.0, clock=clock)
    assert keys.get("srk_a.secret") is None
    keys.put("srk_a.secret", READER)
    assert keys.get("srk_a.secret") is READER
    clock.now += 4.9
    assert keys.get("srk_a.secret") is READER
    clock.now += 0.1
    assert keys.get("srk_a.secret") is None  # expired: looked up again


def test_only_the_exact_token_matches() -> None:
    keys = auth.VerifiedKeys(5.0, clock=Clock())
    keys.put("srk_0123456789abcdef.right-secret", READER)
    assert keys.get("srk_0123456789abcdef.wrong-secret") is None
    assert keys.get("srk_0123456789abcdef.right-secret ") is None
    assert keys.get("srk_0123456789abcdef.right-secret") is READER


def test_a_zero_ttl_keeps_nothing() -> None:
    keys = auth.VerifiedKeys(0.0, clock=Clock())
    keys.put("srk_a.secret", READER)
    assert keys.get("srk_a.secret") is None


def test_the_cache_is_bounded_dropping_expired_entries_first() -> None:
    clock = Clock()
    keys = auth.VerifiedKeys(5.0, max_entries=3, clock=clock)
    keys.put("old", READER)
    clock.now += 10
    keys.put("a", READER)
    keys.put("b", READER)
    keys.put("c", READER)  # full: the expired "old" goes, the live ones stay
    assert [keys.get(t) for t in ("a", "b", "c")] == [READER] * 3
    keys.put("d", READER)  # full of live entries: all dropped, then "d" kept
    assert keys.get("a") is None
    assert keys.get("d") is READER


def test_the_setting_is_bounded() -> None:
    assert make_settings().api_key_cache_seconds == 5.0
    assert make_settings(api_key_cache_seconds=0).api_key_cache_seconds == 0
    with pytest.raises(ValueError, match="api_key_cache_seconds"):
        make_settings(api_key_cache_seconds=-1)
    with pytest.raises(ValueError, match="api_key_cache_seconds"):
        make_settings(api_key_cache_seconds=301)


async def test_a_client_s_requests_cost_one_key_lookup_per_ttl(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    real = keys.authenticate

    async def counting(maker: Any, token: str) -> Principal | None:
        lookups.append(token)
        return await real(maker, token)

    monkeypatch.setattr(auth, "authenticate", counting)
    key = await create_key(stack.db.sessionmaker, name="busy-crm", scopes=["referrals:read"])
    parsed = parse_token(key.token)
    assert parsed is not None
    wrong = f"srk_{parsed[0]}.{'A' * len(parsed[1])}"
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        for _ in range(5):
            ok = await http.get("/v1/referrals", headers={"Authorization": f"Bearer {key.token}"})
            assert ok.status_code == 200
        assert lookups == [key.token]
        # The same key id with another secret is not the token that verified: looked up, 401.
        for _ in range(2):
            refused = await http.get("/v1/referrals", headers={"Authorization": f"Bearer {wrong}"})
            assert refused.status_code == 401
    assert lookups == [key.token, wrong, wrong]  # failures are never remembered


async def _app_with_cache(tmp_path: Path, seconds: float) -> tuple[Any, Any]:
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}",
        api_key_cache_seconds=seconds,
    )
    db = await migrated_database(settings.database_target)
    temporal = await connect(f"127.0.0.1:{free_port()}", lazy=True)
    return create_app(settings, temporal=temporal), db


@pytest.mark.parametrize("seconds", [0.0, 0.5])
async def test_a_revoked_key_is_refused_once_its_entry_expires(
    tmp_path: Path, seconds: float
) -> None:
    app, db = await _app_with_cache(tmp_path, seconds)
    key = await create_key(db.sessionmaker, name="crm", scopes=["referrals:read"])
    headers = {"Authorization": f"Bearer {key.token}"}
    try:
        async with (
            serve_api(app, free_port()) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as http,
        ):
            assert (await http.get("/v1/referrals", headers=headers)).status_code == 200
            assert await revoke_key(db.sessionmaker, key.key_id)
            right_after = await http.get("/v1/referrals", headers=headers)
            if seconds == 0:
                assert right_after.status_code == 401  # no cache: refused at once
            else:
                assert right_after.status_code == 200  # still trusted for up to `seconds`
                await asyncio.sleep(seconds + 0.1)
                assert (await http.get("/v1/referrals", headers=headers)).status_code == 401
    finally:
        await db.engine.dispose()
