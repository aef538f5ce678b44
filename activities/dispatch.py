"""Sending exactly once: the delivery ledger, and email/webhook delivery through it.

Every send (an email to one recipient, a webhook to one subscription) has a **stable key**
that a retried activity or a replayed workflow computes again identically (the document
number or the workflow's effect key, plus the recipient or subscription). Its row in the
``delivery`` table moves ``pending → sending → sent | failed``:

1. the row is inserted once (``ON CONFLICT DO NOTHING``), already claimed by the attempt that
   inserts it (``sending``, with that attempt's lease);
2. any later attempt *claims* it with one conditional ``UPDATE`` (pending, or sending with an
   expired lease): only one attempt at a time can send, and a row already ``sent`` or
   ``failed`` is never sent again;
3. the message goes out (bounded by ``send_timeout``), then the row says ``sent`` (or
   ``failed`` for a permanent failure, which also tells the provider). A transient failure
   puts the row back to ``pending`` and raises, so Temporal retries.

A worker killed mid-send leaves the row ``sending``; once its lease (longer than any send
can take) has passed, the next attempt sends again, with the **same** Message-ID or
webhook-id, so receivers can drop the copy. That is the one remaining window: the server
accepted the message but the worker died before the row said ``sent``.

An error that no retry can cure - the message cannot even be built from what is stored
(``ValueError``, ``TypeError``… e.g. a line break in a registry name that would go into a
header) - is permanent like a refused address: the delivery is ``failed``, the provider is
told, and ``sendmed_dispatch_failures`` counts it. It is never retried for ever.

Webhooks are never retried for ever either: one still failing ``webhook_retry_hours`` (72)
after its first attempt is ``failed`` (the provider told), so a dead endpoint cannot hold a
referral's workflow open. A subscription whose deliveries fail for good
``webhook_disable_after_failures`` (5) times in a row is disabled - its pending deliveries are
then cancelled - and the provider is told; a delivery that succeeds resets the count.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.errors
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from models.adapters.codec import Keyring
from models.adapters.delivery import PermanentFailure, TransientFailure
from models.adapters.mail import Mailer, OutgoingMail, message_id
from models.adapters.pdf import Issuer, Letterhead
from models.adapters.secrets import unseal
from models.adapters.webhooks import WebhookSender, body_bytes, webhook_id
from models.domain.referral import Referral
from models.messages import DeliveryOutcome
from models.settings import Settings
from models.store.db import dialect_of, insert_stmt
from models.store.document_tables import (
    CANCELLED,
    FAILED,
    MANUAL,
    PENDING,
    SENDING,
    SENT,
    DeliveryRow,
    WebhookSubscriberHealthRow,
    WebhookSubscriptionRow,
)
from models.store.tables import LocalAuthorityRow, MediatorRow, ProviderRow, ReferralRow, table_of

log = logging.getLogger(__name__)

Channel = Literal["email", "webhook", "post", "phone", "none"]


@dataclass(frozen=True)
class DispatchConfig:
    mail_from: str
    base_url: str
    escalation_email: str = ""
    send_timeout: float = 30.0
    lease: float = 45.0
    webhook_retry_window: timedelta = timedelta(hours=72)
    webhook_disable_after: int = 5
    keyring: Keyring = field(default_factory=Keyring.development)  # opens webhook secrets
    party_link_days: int = 30  # personal links without a deadline of their own

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchConfig:
        return cls(
            mail_from=settings.mail_from,
            base_url=settings.api_base_url,
            escalation_email=settings.escalation_email,
            send_timeout=settings.send_timeout_seconds,
            lease=settings.delivery_lease_seconds,
            webhook_retry_window=timedelta(hours=settings.webhook_retry_hours),
            webhook_disable_after=settings.webhook_disable_after_failures,
            keyring=settings.codec_keyring(),
            party_link_days=settings.party_link_days,
        )


def utcnow() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def keepalive() -> AsyncIterator[None]:
    """Heartbeat in the background while the activity runs, when it has a heartbeat timeout.

    The heartbeats say "this worker is alive", not "this send is progressing" (a send is
    bounded by ``send_timeout`` instead): a worker killed mid-send is noticed within the
    heartbeat timeout and the attempt retried elsewhere, instead of only after the activity's
    whole start-to-close timeout.
    """
    timeout = activity.info().heartbeat_timeout if activity.in_activity() else None
    if not timeout:
        yield
        return
    interval = max(timeout.total_seconds() / 4, 0.2)

    async def beating() -> None:
        # The first beat after an interval, not at once: the server counts the timeout from
        # the start, and a send that ends sooner (nearly all) costs it no heartbeat write.
        while True:
            await asyncio.sleep(interval)
            activity.heartbeat()

    task = asyncio.create_task(beating())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --------------------------------------------------------------------------- the case


@dataclass(frozen=True)
class Case:
    """The referral as projected, and who issues its documents."""

    referral: Referral
    letterhead: Letterhead
    provider_email: str | None


@dataclass(frozen=True)
class Snapshot:
    """The referral as projected and, when the registry has them, its council and provider."""

    referral: Referral
    letterhead: Letterhead | None
    provider_email: str | None

    def case(self) -> Case:
        if self.letterhead is None:
            council = self.referral.local_authority
            raise RuntimeError(f"no provider registered for council {council}")  # retried
        return Case(self.referral, self.letterhead, self.provider_email)


@dataclass(frozen=True)
class Reach:
    channel: Channel
    address: str | None = None
    detail: str | None = None


def reach(referral: Referral, recipient: str, mediator_email: str | None = None) -> Reach:
    """How to reach ``recipient`` (family, supporter, mediator or a party id)."""
    request = referral.request
    if recipient == "family":
        contact = request.referrer.contact
    elif recipient == "supporter":
        if request.supporter is None or request.supporter.contact is None:
            return Reach("none", detail="no contact details recorded: send by hand")
        contact = request.supporter.contact
    elif recipient == "mediator":
        if mediator_email:
            return Reach("email", mediator_email)
        return Reach("none", detail="no email recorded for the mediator: send by hand")
    else:
        state = referral.party(recipient)
        if state is None:
            return Reach("none", detail="unknown recipient")
        contact = state.party.contact
    channel = contact.preferred.value
    if channel == "email":
        return Reach("email", contact.email)
    detail = f"prefers {channel}: send by hand"
    return Reach("post" if channel == "post" else "phone", detail=detail)


def preferred_channel(referral: Referral, recipient: str) -> Channel:
    """The channel ``recipient`` is reached by (:func:`reach`), before any address is looked
    up: the mediator's and the provider's are email, from the registry, read when the message
    is sent."""
    if recipient in ("mediator", "provider"):
        return "email"
    return reach(referral, recipient).channel


# --------------------------------------------------------------------------- the ledger


@dataclass(frozen=True, slots=True)
class Delivery:
    """A ``delivery`` row as the ledger reads it (a plain value: no ORM instance to build)."""

    key: str
    referral_id: str
    purpose: str
    document_number: str | None
    event_type: str | None
    template: str | None
    recipient: str
    channel: str
    subscription_id: str | None
    status: str
    attempts: int
    message_id: str
    detail: str | None
    payload: dict[str, Any] | None
    claim_token: str | None
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


_DELIVERY = table_of(DeliveryRow)
_COLUMNS = tuple(_DELIVERY.c[name] for name in Delivery.__dataclass_fields__)

# The ledger's statements, built once: parameters are bound per execution.
_READ = select(*_COLUMNS).where(_DELIVERY.c.key == bindparam("k"))
_CLAIM = (
    update(_DELIVERY)
    .where(
        _DELIVERY.c.key == bindparam("k"),
        or_(
            _DELIVERY.c.status == PENDING,
            (_DELIVERY.c.status == SENDING) & (_DELIVERY.c.lease_until < bindparam("now")),
        ),
    )
    .values(
        status=SENDING,
        claim_token=bindparam("token"),
        lease_until=bindparam("until"),
        attempts=_DELIVERY.c.attempts + 1,
        updated_at=bindparam("now"),
    )
    .returning(*_COLUMNS)
)
_SETTLE = update(_DELIVERY).where(
    _DELIVERY.c.key == bindparam("k"),
    _DELIVERY.c.claim_token == bindparam("token"),
    _DELIVERY.c.status == SENDING,
)
_FINISH = _SETTLE.values(
    status=bindparam("to"), detail=bindparam("why"), lease_until=None, updated_at=bindparam("now")
).returning(*_COLUMNS)
_FINISH_SENT = _SETTLE.values(
    status=bindparam("to"),
    detail=bindparam("why"),
    lease_until=None,
    updated_at=bindparam("now"),
    sent_at=bindparam("now"),
).returning(*_COLUMNS)
_CANCEL = (
    update(_DELIVERY)
    .where(_DELIVERY.c.key == bindparam("k"), _DELIVERY.c.status == PENDING)
    .values(status=CANCELLED, detail=bindparam("why"), updated_at=bindparam("now"))
)


@dataclass(frozen=True)
class Claimed:
    token: str
    row: Delivery


@dataclass(frozen=True)
class Settled:
    row: Delivery


@dataclass(frozen=True)
class InFlight:
    row: Delivery


@dataclass(frozen=True)
class Attempt:
    """The delivery's row after ``Ledger.send_once``; ``new``: settled by this attempt."""

    row: Delivery
    new: bool


class Ledger:
    """The ``delivery`` table: insert once, claim atomically, record the outcome.

    The hot path of every send, so it speaks SQLAlchemy Core on autocommit connections with
    statements built once: each statement is its own transaction (as each
    ``session.commit()`` was), without the ORM's unit of work or a ``BEGIN``/``COMMIT``
    round trip around every statement, and ``UPDATE … RETURNING`` reads the row it wrote
    instead of a second query."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        lease: float,
        send_timeout: float = 30.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._engine = autocommit_engine(sessionmaker)
        self._insert = insert_stmt(dialect_of(sessionmaker), _DELIVERY).on_conflict_do_nothing(
            index_elements=["key"]
        )
        self._insert_claimed = self._insert.returning(*_COLUMNS)
        self._lease = timedelta(seconds=lease)
        self._send_timeout = send_timeout

    async def _read(self, conn: AsyncConnection, key: str) -> Delivery:
        found = await _delivery(conn, _READ, {"k": key})
        assert found is not None, "delivery row vanished"
        return found

    async def ensure(self, values: dict[str, Any]) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(self._insert, values)

    async def get(self, key: str) -> Delivery:
        async with self._engine.connect() as conn:
            return await self._read(conn, key)

    async def claim(
        self, key: str, values: dict[str, Any] | None = None
    ) -> Claimed | Settled | InFlight:
        """Claim the row ``key`` (first inserted from ``values`` if given and not there yet):
        pending, or sending with an expired lease."""
        token = uuid.uuid4().hex
        now = utcnow()
        params = {"k": key, "now": now, "token": token, "until": now + self._lease}
        async with self._engine.connect() as conn:  # one connection: insert, update, read
            if values is not None and values["status"] == PENDING:
                # A new row is inserted already claimed by this attempt (one statement).
                first = values | {
                    "status": SENDING,
                    "claim_token": token,
                    "lease_until": params["until"],
                    "attempts": values.get("attempts", 0) + 1,
                    "updated_at": now,
                }
                claimed = await _delivery(conn, self._insert_claimed, first)
                if claimed is not None:
                    return Claimed(token, claimed)
            elif values is not None:
                await conn.execute(self._insert, values)
            claimed = await _delivery(conn, _CLAIM, params)
            if claimed is not None:
                return Claimed(token, claimed)
            row = await self._read(conn, key)
        if row.status in (SENDING, PENDING):  # pending again: another attempt just let go
            return InFlight(row)
        return Settled(row)

    async def finish(self, key: str, token: str, status: str, detail: str | None) -> Delivery:
        """Settle (or release) the claim ``token`` holds; the row as it now is."""
        params = {"k": key, "token": token, "now": utcnow(), "to": status, "why": detail}
        stmt = _FINISH_SENT if status == SENT else _FINISH
        async with self._engine.connect() as conn:
            row = await _delivery(conn, stmt, params)
            return row if row is not None else await self._read(conn, key)

    async def release(self, key: str, token: str, detail: str) -> None:
        """A transient failure: nothing was accepted, the next attempt may send at once."""
        await self.finish(key, token, PENDING, detail)

    async def send_once(
        self,
        key: str,
        send: Callable[[Delivery], Awaitable[None]],
        *,
        label: str,
        give_up: Callable[[Delivery, str], PermanentFailure | None] | None = None,
        values: dict[str, Any] | None = None,
    ) -> Attempt:
        """Send the delivery ``key`` at most once: the one exactly-once path of every email
        and webhook. Its row is inserted from ``values`` first if it is not there yet
        (``ON CONFLICT DO NOTHING``); without ``values`` it must exist already.

        Claim the row; a row already settled is not sent again, and one another attempt is
        sending raises ``TransientFailure`` (retried). Otherwise ``send(row)``, bounded by the
        send timeout, then the row says ``sent``. A permanent failure (or an error no retry can
        cure, or what ``give_up`` turns a transient failure into) makes it ``failed``; a
        transient one lets the row go for the next attempt and raises ``TransientFailure``
        naming ``label``. ``asyncio.CancelledError`` (the worker stopping or killed) passes
        through and leaves the row ``sending``: after the lease the next attempt sends again,
        with the same Message-ID or webhook-id.
        """
        claim = await self.claim(key, values)
        if isinstance(claim, Settled):
            return Attempt(claim.row, new=False)
        if isinstance(claim, InFlight):
            raise TransientFailure(f"{label}: another attempt is sending")
        try:
            try:
                async with asyncio.timeout(self._send_timeout):
                    await send(claim.row)
            except UNCURABLE as exc:
                raise uncurable(exc) from exc
            except TimeoutError as exc:
                raise TransientFailure("send timed out") from exc
            except (TransientFailure, PermanentFailure):
                raise
            except Exception as exc:
                raise TransientFailure(type(exc).__name__) from exc
        except TransientFailure as exc:
            final = give_up(claim.row, exc.detail) if give_up is not None else None
            if final is None:
                await self.release(key, claim.token, exc.detail)
                raise TransientFailure(f"{label}: {exc.detail}") from exc
            row = await self._failed(key, claim.token, final)
        except PermanentFailure as exc:
            row = await self._failed(key, claim.token, exc)
        else:
            row = await self.finish(key, claim.token, SENT, None)
        return Attempt(row, new=True)

    async def _failed(self, key: str, token: str, exc: PermanentFailure) -> Delivery:
        row = await self.finish(key, token, FAILED, exc.detail)
        log.warning("delivery %s failed permanently: %s", key, exc.detail)
        return row

    async def cancel(self, key: str, detail: str) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(_CANCEL, {"k": key, "why": detail, "now": utcnow()})


def autocommit_engine(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    """The sessionmaker's engine (same pool) with each statement its own transaction."""
    bind = sessionmaker.kw.get("bind")
    assert isinstance(bind, AsyncEngine), "sessionmaker must be bound to an engine"
    return bind.execution_options(isolation_level="AUTOCOMMIT")


async def _delivery(conn: AsyncConnection, stmt: Any, params: dict[str, Any]) -> Delivery | None:
    """The one delivery row ``stmt`` returns (a SELECT or an ``… RETURNING``), or None."""
    found = (await conn.execute(stmt, params)).first()
    return None if found is None else Delivery(*found)


def _outcome(row: Delivery) -> DeliveryOutcome:
    status: Literal["sent", "failed", "manual"]
    if row.status == SENT:
        status = "sent"
    elif row.status == MANUAL:
        status = "manual"
    else:
        status = "failed"
    return DeliveryOutcome(
        recipient=row.recipient, channel=row.channel, status=status, detail=row.detail
    )


#: Raised while building or handing over a message from the data we hold: the same data
#: fails the same way on every retry, so these are permanent failures.
UNCURABLE: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    LookupError,
    email.errors.MessageError,
)


def uncurable(exc: Exception) -> PermanentFailure:
    return PermanentFailure(f"the message could not be built ({type(exc).__name__})")


class Retry(Exception):
    """Some deliveries failed transiently: the activity raises so that Temporal retries."""

    def __init__(self, details: Sequence[str]) -> None:
        super().__init__(f"{len(details)} delivery(ies) will be retried: " + "; ".join(details))
        self.details = tuple(details)


# --------------------------------------------------------------------------- the dispatcher

_REFERRALS = table_of(ReferralRow)
_COUNCILS = table_of(LocalAuthorityRow)
_PROVIDERS = table_of(ProviderRow)
_MEDIATORS = table_of(MediatorRow)
_SUBSCRIPTIONS = table_of(WebhookSubscriptionRow)

#: The referral's snapshot with its council's name and provider (``Dispatcher.snapshot``).
#: The council's name and its provider's letterhead (``Dispatcher._letterhead``).
_LETTERHEAD_COLUMNS = (
    _COUNCILS.c.name.label("council"),
    _PROVIDERS.c.id.label("provider_id"),
    _PROVIDERS.c.name,
    _PROVIDERS.c.phone,
    _PROVIDERS.c.email,
    _PROVIDERS.c.website,
    _PROVIDERS.c.address,
    _PROVIDERS.c.office_hours,
)
_CASE = (
    select(_REFERRALS.c.snapshot, *_LETTERHEAD_COLUMNS)
    .select_from(_REFERRALS)
    .outerjoin(_COUNCILS, _COUNCILS.c.code == _REFERRALS.c.local_authority)
    .outerjoin(_PROVIDERS, _PROVIDERS.c.id == _COUNCILS.c.provider_id)
    .where(_REFERRALS.c.id == bindparam("id"))
)
# The same, for a referral already in hand (the projection's webhooks).
_LETTERHEAD = (
    select(*_LETTERHEAD_COLUMNS)
    .select_from(_COUNCILS)
    .outerjoin(_PROVIDERS, _PROVIDERS.c.id == _COUNCILS.c.provider_id)
    .where(_COUNCILS.c.code == bindparam("code"))
)
_MEDIATOR_EMAIL = select(_MEDIATORS.c.email).where(_MEDIATORS.c.id == bindparam("id"))
_ACTIVE_SUBSCRIPTIONS = select(_SUBSCRIPTIONS).where(_SUBSCRIPTIONS.c.active.is_(True))


class Dispatcher:
    """Email and webhook delivery through the ledger, with escalation of permanent failures."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        mailer: Mailer,
        webhooks: WebhookSender,
        config: DispatchConfig,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.mailer = mailer
        self.webhooks = webhooks
        self.config = config
        self.ledger = Ledger(sessionmaker, config.lease, config.send_timeout)
        self._dialect = dialect_of(sessionmaker)
        self._engine = autocommit_engine(sessionmaker)

    # ------------------------------------------------------------------ reading

    async def case(self, referral_id: str) -> Case:
        """The referral's snapshot, its council and the council's provider: one query."""
        return (await self.snapshot(referral_id)).case()

    async def case_of(self, referral: Referral) -> Case:
        """The case of a referral already in hand (as just projected): its council and its
        provider, without reading and validating the snapshot again."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(_LETTERHEAD, {"code": referral.local_authority})).first()
        if row is None or row.provider_id is None:
            return Snapshot(referral, None, None).case()
        return Snapshot(referral, self._letterhead(row), row.email).case()

    async def snapshot(self, referral_id: str) -> Snapshot:
        """As :meth:`case`, without requiring the provider (read in the same query)."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(_CASE, {"id": referral_id})).first()
        if row is None:
            raise RuntimeError("referral not projected yet")  # retried
        referral = Referral.model_validate(row.snapshot)
        if row.council is None or row.provider_id is None:
            return Snapshot(referral, None, None)
        return Snapshot(referral, self._letterhead(row), row.email)

    def _letterhead(self, row: Any) -> Letterhead:
        issuer = Issuer(
            name=row.name,
            phone=row.phone,
            email=row.email,
            website=row.website,
            address=row.address,
            office_hours=row.office_hours,
        )
        return Letterhead(issuer, row.council, self.config.base_url)

    async def mediator_email(self, mediator_id: str) -> str | None:
        async with self._engine.connect() as conn:
            found = await conn.scalar(_MEDIATOR_EMAIL, {"id": mediator_id})
        return str(found) if found is not None else None

    # ------------------------------------------------------------------ email

    async def email(
        self,
        case: Case,
        *,
        key: str,
        purpose: str,
        recipient: str,
        target: Reach,
        compose: Callable[[str, datetime], OutgoingMail],
        document_number: str | None = None,
        template: str | None = None,
        escalate: bool = True,
    ) -> DeliveryOutcome:
        """Email ``recipient`` once for ``key``; ``compose(address, date)`` builds the message."""
        now = utcnow()
        deliverable = target.channel == "email" and target.address is not None
        unknown = target.detail == "unknown recipient"
        values = {
            "key": key,
            "referral_id": case.referral.id,
            "purpose": purpose,
            "document_number": document_number,
            "template": template,
            "recipient": recipient,
            "channel": target.channel,
            "status": PENDING if deliverable else (FAILED if unknown else MANUAL),
            "attempts": 0,
            "message_id": message_id(key, self.config.mail_from),
            "detail": target.detail,
            "created_at": now,
            "updated_at": now,
        }
        address = target.address

        async def send(row: Delivery) -> None:
            assert address is not None
            await self.mailer.send(compose(address, row.created_at))

        attempt = await self.ledger.send_once(
            key, send, label=f"{purpose} to {recipient}", values=values
        )
        if attempt.row.status == FAILED and escalate:
            await self.escalate(case, attempt.row)
        return _outcome(attempt.row)

    async def escalate(self, case: Case, failed: Delivery) -> None:
        """Tell the provider a delivery failed: the referral id and what, no personal data."""
        referral_id = case.referral.id
        what = (
            f"document {failed.document_number}"
            if failed.document_number
            else (f"event {failed.event_type}" if failed.event_type else f"{failed.purpose}")
        )
        await self.tell_provider(
            case,
            key=f"{failed.key}:escalation",
            subject=f"Delivery failed for referral {referral_id}",
            lines=[
                f"A delivery for referral {referral_id} could not be made and will not be retried.",
                "",
                f"What: {what}",
                f"To: {failed.recipient} (by {failed.channel})",
                f"Reason: {failed.detail or 'unknown'}",
                "",
                "Please check the contact details in your case system and send it another way.",
                f"The referral's deliveries: {self.config.base_url}/v1/referrals/{referral_id}"
                "/deliveries",
            ],
            document_number=failed.document_number,
        )

    async def tell_provider(
        self,
        case: Case,
        *,
        key: str,
        subject: str,
        lines: list[str],
        document_number: str | None = None,
    ) -> None:
        """Email the case's provider (or ``escalation_email``) once for ``key``: ids, no
        personal data."""
        to = case.provider_email or self.config.escalation_email
        if not to:
            log.error("%s: nobody can be told, no provider email", key)
            return
        body = "\n".join(["Hello,", "", *lines])

        def compose(address: str, date: datetime) -> OutgoingMail:
            return OutgoingMail(
                key=key,
                sender=self.config.mail_from,
                sender_name="SEND referrals service",
                to=address,
                subject=subject,
                body=body,
                date=date,
            )

        await self.email(
            case,
            key=key,
            purpose="escalation",
            recipient="provider",
            target=Reach("email", to),
            compose=compose,
            document_number=document_number,
            escalate=False,
        )

    # ------------------------------------------------------------------ webhooks

    async def subscriptions(
        self, event_type: str, local_authority: str
    ) -> list[WebhookSubscriptionRow]:
        async with self._engine.connect() as conn:
            result = await conn.execute(_ACTIVE_SUBSCRIPTIONS)
            rows = [WebhookSubscriptionRow(**found._mapping) for found in result]
        return [
            sub
            for sub in rows
            if event_type in sub.event_types
            and (sub.local_authority is None or sub.local_authority == local_authority)
        ]

    async def publish(
        self,
        case: Case | None,
        *,
        referral_id: str,
        local_authority: str,
        event_type: str,
        event_key: str,
        payload: dict[str, Any],
        purpose: str,
        document_number: str | None = None,
    ) -> list[DeliveryOutcome]:
        """Deliver ``payload`` to every matching subscription once (key = event + subscription).

        Raises ``Retry`` after trying them all if any failed transiently.
        """
        outcomes: list[DeliveryOutcome] = []
        retry: list[str] = []
        now = utcnow()
        subscriptions = await self.subscriptions(event_type, local_authority)
        await self._cancel_disabled(referral_id, event_key, {sub.id for sub in subscriptions})
        for sub in subscriptions:
            key = f"{event_key}:webhook:{sub.id}"
            values = {
                "key": key,
                "referral_id": referral_id,
                "purpose": purpose,
                "document_number": document_number,
                "event_type": event_type,
                "recipient": sub.id,
                "channel": "webhook",
                "subscription_id": sub.id,
                "status": PENDING,
                "attempts": 0,
                "message_id": webhook_id(f"{event_key}:{sub.id}"),
                "payload": payload,
                "created_at": now,
                "updated_at": now,
            }
            try:
                outcome = await self._webhook(case, key, sub, values)
            except TransientFailure as exc:
                retry.append(exc.detail)
                continue
            if outcome is not None:
                outcomes.append(outcome)
        if retry:
            raise Retry(retry)
        return outcomes

    async def _cancel_disabled(self, referral_id: str, event_key: str, active: set[str]) -> None:
        """Rows still pending for subscriptions disabled since: never sent, marked cancelled
        (one conditional ``UPDATE``; the referral's index finds them, the key's prefix cannot
        use the primary key's index under a non-C collation)."""
        table = table_of(DeliveryRow)
        stmt = (
            update(table)
            .where(
                table.c.referral_id == referral_id,
                table.c.key.startswith(f"{event_key}:webhook:", autoescape=True),
                table.c.status == PENDING,
                or_(table.c.subscription_id.is_(None), table.c.subscription_id.not_in(active)),
            )
            .values(
                status=CANCELLED,
                detail="subscription disabled before delivery",
                updated_at=utcnow(),
            )
        )
        async with self._engine.connect() as conn:
            await conn.execute(stmt)

    async def _webhook(
        self,
        case: Case | None,
        key: str,
        sub: WebhookSubscriptionRow,
        values: dict[str, Any] | None = None,
    ) -> DeliveryOutcome | None:

        async def send(row: Delivery) -> None:
            secret = unseal(self.config.keyring, sub.secret, sub.id)
            await self.webhooks.send(sub.url, secret, row.message_id, body_bytes(row.payload or {}))

        def give_up(row: Delivery, detail: str) -> PermanentFailure | None:
            """Never retried for ever: after the retry window, a transient failure is final."""
            window = self.config.webhook_retry_window
            if utcnow() - row.created_at < window:
                return None
            hours = window.total_seconds() / 3600
            return PermanentFailure(
                f"gave up after {row.attempts} attempts over {hours:g} hours ({detail})"
            )

        attempt = await self.ledger.send_once(
            key, send, label=f"webhook {sub.id}", give_up=give_up, values=values
        )
        row = attempt.row
        if row.status == CANCELLED:
            return None
        if row.status == FAILED and case is not None:
            await self.escalate(case, row)
        if attempt.new and row.status == FAILED:
            if await self._subscriber_failed(sub.id) and case is not None:
                await self._tell_disabled(case, sub)
        elif attempt.new:
            await self._subscriber_succeeded(sub.id)
        return _outcome(row)

    # ------------------------------------------------------------------ subscriber health

    async def _subscriber_succeeded(self, subscription_id: str) -> None:
        table = table_of(WebhookSubscriberHealthRow)
        async with self._engine.connect() as conn:
            await conn.execute(
                update(table)
                .where(
                    table.c.subscription_id == subscription_id,
                    table.c.consecutive_failures > 0,
                )
                .values(consecutive_failures=0)
            )

    async def _subscriber_failed(self, subscription_id: str) -> bool:
        """Count a delivery failed for good; True if that disabled the subscription now."""
        now = utcnow()
        health = table_of(WebhookSubscriberHealthRow)
        subs = table_of(WebhookSubscriptionRow)
        reason = f"disabled after {self.config.webhook_disable_after} deliveries in a row failed"
        async with self.sessionmaker() as session:
            insert = insert_stmt(self._dialect, health).values(
                subscription_id=subscription_id, consecutive_failures=0
            )
            await session.exec(insert.on_conflict_do_nothing(index_elements=["subscription_id"]))
            await session.exec(
                update(health)
                .where(health.c.subscription_id == subscription_id)
                .values(consecutive_failures=health.c.consecutive_failures + 1, last_failure_at=now)
            )
            found = await session.get(WebhookSubscriberHealthRow, subscription_id)
            disabled = False
            if (
                found is not None
                and found.consecutive_failures >= self.config.webhook_disable_after
            ):
                result: Any = await session.exec(
                    update(subs)
                    .where(subs.c.id == subscription_id, subs.c.active.is_(True))
                    .values(active=False, disabled_at=now)
                )
                disabled = int(result.rowcount or 0) == 1
                if disabled:
                    found.disabled_reason = reason
                    session.add(found)
            await session.commit()
        if disabled:
            log.warning("webhook subscription %s %s", subscription_id, reason)
        return disabled

    async def _tell_disabled(self, case: Case, sub: WebhookSubscriptionRow) -> None:
        """Tell the provider that a subscriber was switched off (no personal data)."""
        await self.tell_provider(
            case,
            key=f"subscription:{sub.id}:disabled",
            subject=f"Webhook subscription {sub.id} disabled",
            lines=[
                f"The webhook subscription {sub.id} has been disabled: its last "
                f"{self.config.webhook_disable_after} deliveries failed for good.",
                "Events for it are no longer sent and its pending deliveries are cancelled.",
                "",
                "Please ask the back office that owns it to fix the endpoint and subscribe again.",
                f"Its deliveries: {self.config.base_url}/v1/webhook-subscriptions/{sub.id}"
                "/deliveries",
            ],
        )
