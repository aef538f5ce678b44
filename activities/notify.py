"""Notifications to the family and the parties, recorded in the outbox exactly once.

Each notification is keyed by the workflow's effect key plus the recipient, so a retried
activity or a replayed workflow inserts nothing new. Delivery (email, webhooks) reads the
outbox; the documents issue adds rendering and sending.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from models.db import dialect_of, insert_stmt
from models.domain.referral import Referral
from models.tables import NotificationRow, ReferralRow, table_of


class NotificationRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    referral_id: str
    template: str
    recipients: tuple[str, ...]
    data: dict[str, str] = {}


def channel_for(referral: Referral, recipient: str) -> str:
    """How this recipient prefers to be contacted (email, phone or post)."""
    request = referral.request
    if recipient == "family":
        return request.referrer.contact.preferred.value
    if recipient == "supporter":
        contact = request.supporter.contact if request.supporter else None
        return contact.preferred.value if contact else "none"
    party = referral.party(recipient)
    return party.party.contact.preferred.value if party else "none"


class NotifyActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._dialect = dialect_of(sessionmaker)

    @activity.defn(name="send_notification")
    async def send_notification(self, request: NotificationRequest) -> int:
        """Queue the notification for each recipient; returns how many were new."""
        async with self._sessionmaker() as session:
            row = await session.get(ReferralRow, request.referral_id)
            if row is None:
                raise RuntimeError("referral not projected yet")  # retried
            referral = Referral.model_validate(row.snapshot)
            now = datetime.now(UTC)
            values: list[Mapping[str, Any]] = [
                {
                    "key": f"{request.key}:{recipient}",
                    "referral_id": request.referral_id,
                    "template": request.template,
                    "recipient": recipient,
                    "channel": channel_for(referral, recipient),
                    "status": "queued",
                    "created_at": now,
                    "data": dict(request.data),
                }
                for recipient in request.recipients
            ]
            if not values:
                return 0
            stmt = insert_stmt(self._dialect, table_of(NotificationRow)).values(values)
            result = await session.exec(stmt.on_conflict_do_nothing())
            await session.commit()
            return int(result.rowcount or 0)
