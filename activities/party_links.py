"""Minting personal links when the email asking for a decision is composed.

One link per send key (the delivery's key): the first attempt mints it (256 random bits,
stored as its SHA-256, plus the token sealed with the codec key); a retried send finds the
same row and opens the sealed token, so the email's bytes stay identical. Once the delivery
has settled (sent, failed or manual) the sealed copy is cleared and only the hash is left.
Links go only into emails of referrals under the personal-link rules (rules 3).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.dispatch import DispatchConfig, utcnow
from models.adapters.secrets import seal, unseal
from models.domain.party_links import Purpose, expires_at, new_token, slot, token_digest
from models.domain.referral import PAGES_RULES, Referral
from models.store.party_links import ensure_link, forget_token

RESPOND_PATH = "/respond/"


def _aad(link_id: str) -> str:
    return f"party-link:{link_id}"


class LinkMinter:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], config: DispatchConfig
    ) -> None:
        self._sessionmaker = sessionmaker
        self._config = config

    async def url(
        self,
        referral: Referral,
        *,
        send_key: str,
        party: str,
        purpose: Purpose,
        subject: str | None = None,
        answer_by: date | None = None,
        meeting_starts: datetime | None = None,
    ) -> str | None:
        """The link for this send (minted once); None for a referral under older rules, or a
        decision whose time is already over (no email asks anyone to act too late)."""
        if referral.rules < PAGES_RULES:
            return None
        now = utcnow()
        expires = expires_at(
            purpose,
            sent_at=now,
            days=self._config.party_link_days,
            answer_by=answer_by,
            meeting_starts=meeting_starts,
        )
        link_id = uuid.uuid4().hex
        token = new_token()
        keyring = self._config.keyring
        row, created = await ensure_link(
            self._sessionmaker,
            {
                "id": link_id,
                "token_sha256": token_digest(token),
                "token_sealed": seal(keyring, token, _aad(link_id)),
                "send_key": send_key,
                "referral_id": referral.id,
                "party": party,
                "purpose": purpose.value,
                "subject": subject,
                "slot": slot(purpose, party, subject),
                "created_at": now,
                "expires_at": expires,
            },
        )
        if not created:
            if row.token_sealed is None:
                return None  # settled earlier: nothing will be composed again
            token = unseal(keyring, row.token_sealed, _aad(row.id))
        elif expires <= now:
            await forget_token(self._sessionmaker, send_key)  # a retry says the same: no link
            return None
        return f"{self._config.base_url.rstrip('/')}{RESPOND_PATH}{token}"

    async def settled(self, send_key: str) -> None:
        await forget_token(self._sessionmaker, send_key)
