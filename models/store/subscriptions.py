"""Webhook subscriptions at rest: secrets stored before sealing are sealed in place.

Rows written before sealing hold the plain ``whsec_…`` secret; :func:`seal_webhook_secrets`
(run by the worker on start) seals them with the active codec key
(``models/adapters/secrets.py``). Idempotent: a sealed row is left alone.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.adapters.codec import Keyring
from models.adapters.secrets import PREFIX, seal
from models.store.document_tables import WebhookSubscriptionRow
from models.store.tables import table_of


async def seal_webhook_secrets(
    sessionmaker: async_sessionmaker[AsyncSession], keyring: Keyring
) -> int:
    """Seal every subscription secret still stored in plain; returns how many were sealed."""
    async with sessionmaker() as session:
        rows = (
            await session.exec(
                select(WebhookSubscriptionRow.id, WebhookSubscriptionRow.secret).where(
                    col(WebhookSubscriptionRow.secret).not_like(f"{PREFIX}%")
                )
            )
        ).all()
        table = table_of(WebhookSubscriptionRow)
        for subscription_id, secret in rows:
            await session.exec(
                update(table)
                .where(table.c.id == subscription_id, table.c.secret == secret)
                .values(secret=seal(keyring, secret, subscription_id))
            )
        await session.commit()
    return len(rows)
