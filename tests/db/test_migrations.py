"""Migrations: an empty database and one at the previous revision both reach the models."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from models.migrate import alembic_config, sync_url, upgrade
from tests.conftest import Database


def heads() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def current(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        revisions = set(MigrationContext.configure(conn).get_current_heads())
    engine.dispose()
    return revisions


async def test_migrations_match_the_models(db: Database) -> None:
    """No drift: autogenerate finds nothing to add after upgrading to the heads."""
    assert current(db.url) == heads()
    await asyncio.to_thread(command.check, alembic_config(db.url))


async def test_upgrade_from_each_previous_revision(db: Database) -> None:
    """Down to the first revision and back up: data in old tables survives each step."""
    config = alembic_config(db.url)
    await asyncio.to_thread(command.downgrade, config, "0001")
    engine = create_engine(sync_url(db.url))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO referral_event (referral_id, seq, type, occurred_on, recorded_at, "
                "actor, data) VALUES ('r1', 1, 'referral.created', '2026-11-20', "
                "'2026-11-20 09:00:00+00:00', 'system', '{}')"
            )
        )
    await asyncio.to_thread(upgrade, db.url)
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT count(*) FROM referral_event")).scalar_one()
        councils = conn.execute(text("SELECT code FROM local_authority")).scalars().all()
    engine.dispose()
    assert kept == 1
    assert "E10000015" in councils
    assert current(db.url) == heads()
