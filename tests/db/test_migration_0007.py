"""Migration 0007: existing idempotency records move from the key's name to its id (where the
name names one key), and nothing else is lost on the way up."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from models.migrate import alembic_config, sync_url, upgrade
from tests.conftest import Database

KEYS = [("k-crm", "crm"), ("k-dup-1", "dup"), ("k-dup-2", "dup")]
RECORDS = ["crm", "dup", "nobody"]


async def test_idempotency_records_are_keyed_by_the_key_id_when_upgrading_to_0007(
    db: Database,
) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(db.url), "0005")
    engine = create_engine(sync_url(db.url))
    with engine.begin() as conn:
        for key_id, name in KEYS:
            conn.execute(
                text(
                    "INSERT INTO api_key (key_id, name, secret_sha256, scopes, created_at) "
                    "VALUES (:k, :n, :s, '[]', '2026-11-20 09:00:00+00:00')"
                ),
                {"k": key_id, "n": name, "s": "0" * 64},
            )
        for client in RECORDS:
            conn.execute(
                text(
                    "INSERT INTO idempotency_record (client_id, key, method, path, "
                    "request_hash, status_code, response, created_at) VALUES (:c, 'k1', 'POST', "
                    "'/v1/referrals', 'h', 201, '{}', '2026-11-20 09:00:00+00:00')"
                ),
                {"c": client},
            )
    await asyncio.to_thread(upgrade, db.url)
    with engine.connect() as conn:
        owners = conn.execute(text("SELECT client_id FROM idempotency_record")).scalars().all()
        audit = conn.execute(text("SELECT count(*) FROM registry_change")).scalar_one()
    engine.dispose()
    # The unique name became its key's id; an ambiguous or unknown one is left to the purge.
    assert sorted(owners) == ["dup", "k-crm", "nobody"]
    assert audit == 0


def test_a_new_sqlite_database_is_private_when_a_migration_creates_it(tmp_path: Path) -> None:
    """``make api-key`` or ``make migrate`` before any ``make run``: still 0600 in a 0700
    folder, whatever the umask."""
    database = tmp_path / "var" / "sendmed.db"
    previous = os.umask(0o022)
    try:
        upgrade(f"sqlite+aiosqlite:///{database}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700
