"""Real components for dispatch tests: an aiosmtpd SMTP server, a webhook receiver that checks
Standard Webhooks signatures (Starlette under uvicorn), migrated databases, projected referrals.

Nothing we own is faked: the activities run as written against SQLite (and PostgreSQL when
``TEST_DATABASE_URL`` is set); only the outside world (a mail server, a back office) is
played by small real servers started here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pytest
from sqlmodel import col, select

from activities.dispatch import DispatchConfig
from activities.documents import DocumentActivities
from activities.notify import NotifyActivities
from activities.records import RecordActivities
from models.adapters.mail import Mailer
from models.adapters.webhooks import WebhookSender, new_secret
from models.domain.referral import Referral
from models.messages import EVENT_TYPES, Projection
from models.store.document_tables import DeliveryRow, WebhookSubscriptionRow
from tests.conftest import (
    LOOPBACK,
    Database,
    fresh_postgres_database,
    migrated_database,
)
from tests.servers import (
    Delivered,
    Received,
    Receiver,
    Sink,
    SmtpServer,
    plain_text,
    smtp_server,
    webhook_receiver,
)

__all__ = ["Delivered", "Received", "Receiver", "Sink", "SmtpServer", "plain_text"]

MAIL_FROM = "noreply@send-referrals.example.org"
PROVIDER_EMAIL = "senmediation@kids.org.uk"  # the seeded Kids row (migration 0002)


# --------------------------------------------------------------------------- databases


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await migrated_database(f"sqlite+aiosqlite:///{tmp_path / 'docs.db'}")
    yield database
    await database.engine.dispose()


class Closable(Protocol):
    async def aclose(self) -> None: ...


@pytest.fixture
async def closing() -> AsyncIterator[list[Closable]]:
    """Mailers and webhook senders that keep connections, closed at the end of the test as
    the worker closes its own when it stops."""
    kept: list[Closable] = []
    yield kept
    for each in kept:
        await each.aclose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """SQLite always; PostgreSQL too when TEST_DATABASE_URL is set (where it matters)."""
    if request.param == "sqlite":
        database = await migrated_database(f"sqlite+aiosqlite:///{tmp_path / 'docs.db'}")
        yield database
        await database.engine.dispose()
        return
    base: str = request.getfixturevalue("postgres_url")
    with fresh_postgres_database(base) as url:
        database = await migrated_database(url)
        yield database
        await database.engine.dispose()


async def project(db: Database, referral: Referral) -> None:
    """Put the referral in the read model with the real projection activity."""
    await RecordActivities(db.sessionmaker).record_referral(
        Projection(referral=referral, events=(), at=datetime.now(UTC))
    )


async def deliveries(db: Database, referral_id: str) -> list[DeliveryRow]:
    async with db.sessionmaker() as session:
        rows = await session.exec(
            select(DeliveryRow)
            .where(col(DeliveryRow.referral_id) == referral_id)
            .order_by(col(DeliveryRow.key))
        )
        return list(rows.all())


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as hooks:
        yield hooks


async def subscribe(
    db: Database,
    hooks: Receiver,
    endpoint: str,
    *,
    event_types: tuple[str, ...] = EVENT_TYPES,
    local_authority: str | None = None,
    active: bool = True,
    url: str | None = None,
) -> WebhookSubscriptionRow:
    """A subscription row as the API creates it, its secret handed to the receiver."""
    row = WebhookSubscriptionRow(
        id=f"whsub_{endpoint}",
        url=url or hooks.url(endpoint),
        secret=new_secret(),
        event_types=list(event_types),
        local_authority=local_authority,
        client_id="test",
        active=active,
        created_at=datetime.now(UTC),
    )
    async with db.sessionmaker() as session:
        session.add(row)
        await session.commit()
    hooks.secrets[endpoint] = row.secret
    return row


# --------------------------------------------------------------------------- activities


def config(**overrides: Any) -> DispatchConfig:
    values: dict[str, Any] = {
        "mail_from": MAIL_FROM,
        "base_url": "https://send-referrals.example.org",
        "send_timeout": 5.0,
        "lease": 6.0,
    }
    values.update(overrides)
    return DispatchConfig(**values)


def document_activities(db: Database, mailer: Mailer, **overrides: Any) -> DocumentActivities:
    webhooks = WebhookSender(timeout=5, allowed_hosts=frozenset(LOOPBACK))
    return DocumentActivities(db.sessionmaker, mailer, webhooks, config(**overrides))


def notify_activities(db: Database, mailer: Mailer, **overrides: Any) -> NotifyActivities:
    return NotifyActivities(
        db.sessionmaker,
        mailer,
        WebhookSender(timeout=5, allowed_hosts=frozenset(LOOPBACK)),
        config(**overrides),
    )
