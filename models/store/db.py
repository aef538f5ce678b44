"""Engine and session factories. Built by the API lifespan and the worker, never at import."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def private_sqlite_file(url: str, *, create: bool = False) -> None:
    """A SQLite database file holds personal data and webhook secrets: its folder is created
    0700 when new, and the file is tightened to 0600 (``create``: made so before SQLite opens
    it, which gives its -wal and -shm files the database file's mode)."""
    if not is_sqlite(url):
        return
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if create:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    if path.exists() and path.stat().st_mode & 0o077:
        path.chmod(0o600)


def make_engine(url: str, *, echo: bool = False, pre_ping: bool = True) -> AsyncEngine:
    """An async engine; for SQLite the file is made private (0600) and WAL is switched on.

    ``pre_ping`` tests each pooled PostgreSQL connection before use (a round trip per
    session), so an API request after a database restart does not fail on a dead connection.
    The worker turns it off: its activities retry, and SQLAlchemy drops the whole pool on the
    first disconnect it sees."""
    kwargs: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        private_sqlite_file(url)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=pre_ping)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database cannot answer a trivial query."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def insert_stmt(dialect: str, table: Any) -> Any:
    """A dialect-specific INSERT that supports ``on_conflict_do_nothing``/``do_update``."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def dialect_of(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    bind = sessionmaker.kw.get("bind")
    assert bind is not None, "sessionmaker must be bound to an engine"
    name: str = bind.dialect.name
    return name
