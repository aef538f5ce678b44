"""``python -m api.keys``: create (shown once), list (no secrets), revoke; only hashes stored."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from api import keys
from models.store.auth_tables import ApiKeyRow
from models.store.db import make_engine, make_sessionmaker


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = keys.main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_create_list_revoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    monkeypatch.setenv("SENDMED_DATABASE_URL", url)
    monkeypatch.setenv("SENDMED_ENVIRONMENT", "test")

    code, out = run(
        [
            "create",
            "--name",
            "herts-crm",
            "--scope",
            "referrals:read",
            "--scope",
            "referrals:write",
            "--local-authority",
            "E10000015",
        ],
        capsys,
    )
    assert code == 0, out
    match = re.search(r"(srk_[0-9a-f]{16}\.[A-Za-z0-9_-]{43})", out)
    assert match, out
    token = match.group(1)
    parsed = keys.parse_token(token)
    assert parsed is not None
    key_id, secret = parsed

    code, listed = run(["list"], capsys)
    assert code == 0
    assert key_id in listed
    assert "herts-crm" in listed
    assert "E10000015" in listed
    assert secret not in listed

    async def check() -> tuple[ApiKeyRow | None, keys.Principal | None]:
        engine = make_engine(url)
        maker = make_sessionmaker(engine)
        async with maker() as session:
            row = await session.get(ApiKeyRow, key_id)
        principal = await keys.authenticate(maker, token)
        await engine.dispose()
        return row, principal

    row, principal = asyncio.run(check())
    assert row is not None
    assert secret not in row.secret_sha256
    assert row.secret_sha256 == keys.secret_digest(secret)
    assert principal is not None
    assert principal.scopes == frozenset({"referrals:read", "referrals:write"})
    assert principal.local_authorities == frozenset({"E10000015"})

    code, out = run(["revoke", key_id], capsys)
    assert code == 0
    assert asyncio.run(check())[1] is None
    assert "revoked" in run(["list"], capsys)[1]
    assert run(["revoke", "0" * 16], capsys)[0] == 1


def test_create_refuses_unknown_scopes_and_bad_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SENDMED_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    with pytest.raises(SystemExit):
        keys.main(["create", "--name", "x", "--scope", "everything"])
    code, out = run(["create", "--name", "bad name", "--scope", "admin"], capsys)
    assert code == 2
    assert "name" in out


def test_tokens_are_random_and_well_formed() -> None:
    tokens = {keys.new_token()[2] for _ in range(100)}
    assert len(tokens) == 100
    assert all(keys.parse_token(t) for t in tokens)
    assert keys.parse_token("srk_zz.short") is None
