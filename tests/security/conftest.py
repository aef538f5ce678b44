"""Security tests: a throw-away database per test (SQLite; PostgreSQL too when configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Database, fresh_postgres_database, migrated_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = await migrated_database(f"sqlite+aiosqlite:///{tmp_path / 'sec.sqlite'}")
        yield database
        await database.engine.dispose()
        return
    base: str = request.getfixturevalue("postgres_url")
    with fresh_postgres_database(base) as url:
        database = await migrated_database(url)
        yield database
        await database.engine.dispose()
