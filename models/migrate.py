"""Apply database migrations: ``python -m models.migrate`` (make run, worker start, production).

Uses the same ``SENDMED_DATABASE_URL`` as the service. Alembic's scripts live in
``models/migrations``; no ``alembic.ini`` is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from models.settings import Settings
from models.store.db import private_sqlite_file

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def sync_url(url: str) -> str:
    """The synchronous driver for an async URL (Alembic runs synchronously)."""
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    private_sqlite_file(database_url, create=True)  # 0600 (personal data), folder 0700 if new
    command.upgrade(alembic_config(database_url), revision)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    settings = Settings()
    upgrade(settings.database_target, args[0] if args else "heads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
