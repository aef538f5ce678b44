"""Migration 0007: existing idempotency records move from the key's name to its id (where the
name names one key), and nothing else is lost on the way up."""

from __future__ import annotations

import asyncio

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
