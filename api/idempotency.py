"""``Idempotency-Key``: a repeated POST with the same key and body gets the first response.

The same key with a different body is a 422. Records belong to the API key that made them
(its id: a client name need not be unique, so two clients never share or block each other's
keys). This sits on top of Temporal's own protection (a referral's workflow id and a
command's update id are derived from the API key's id and the Idempotency-Key), so even two
identical requests racing each other create one referral and run one command.

The first request *claims* the key and keeps its claim alive (every few seconds) while it
works. A repeat that finds the claim alive waits for the first answer (up to 30 s, then 409
``idempotency-key-in-progress``, a problem type of its own, with ``Retry-After``). A claim
not kept alive for ``LEASE`` (10 s) was left by a process that died mid-request (killed,
crashed, restarted): the repeat takes it over and answers the request itself at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import Problem
from models.store.db import dialect_of, insert_stmt
from models.store.tables import IdempotencyRow, table_of

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Repeat a POST safely: the same key and body return the first response.",
    ),
]


def body_hash(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_digest(client_id: str, key: str) -> str:
    return hashlib.sha256(f"{client_id}\x00{key}".encode()).hexdigest()


IN_PROGRESS = 0  # status_code of a record whose first request is still being answered
WAIT_SECONDS = 30.0  # how long a repeat waits for the first request's answer
POLL_SECONDS = 0.05
LEASE = timedelta(seconds=10)  # a claim not kept alive this long was left by a dead process
KEEPALIVE_SECONDS = LEASE.total_seconds() / 4
_releases: set[asyncio.Task[None]] = set()

log = logging.getLogger(__name__)


def reused() -> Problem:
    return Problem(
        422,
        "Idempotency-Key reused",
        "This Idempotency-Key was already used with a different request; use a new key "
        "for a new request.",
        type_="idempotency-key-reused",
        errors=[{"field": "header.Idempotency-Key", "message": "reused with another body"}],
    )


def in_progress() -> Problem:
    return Problem(
        409,
        "Request in progress",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        type_="idempotency-key-in-progress",
        headers={"Retry-After": "1"},
    )


async def idempotent(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    client_id: str,
    key: str | None,
    method: str,
    path: str,
    request_hash: str,
    produce: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
) -> JSONResponse:
    """Answer once per key: the first request *claims* the key (a record in progress) before
    it does anything, so a repeat arriving meanwhile - a client retrying after a timeout, or
    the same request sent twice at once - waits for the first answer and replays it, instead
    of doing the work again (a second mediator, a second webhook subscription)."""
    if key is None:
        status, body = await produce()
        return JSONResponse(body, status_code=status)
    record = {
        "client_id": client_id,
        "key": key,
        "method": method,
        "path": path,
        "request_hash": request_hash,
    }
    deadline = time.monotonic() + WAIT_SECONDS
    while not await _claim(sessionmaker, record):
        async with sessionmaker() as session:
            found = await session.get(IdempotencyRow, (client_id, key))
        if found is None:
            continue  # the first request failed and let go meanwhile: claim it now
        if found.request_hash != request_hash or found.path != path:
            raise reused()
        if found.status_code != IN_PROGRESS:
            return JSONResponse(
                found.response,
                status_code=found.status_code,
                headers={"Idempotent-Replayed": "true"},
            )
        if _aware(found.created_at) < datetime.now(UTC) - LEASE and await _take_over(
            sessionmaker, client_id, key
        ):
            break
        if time.monotonic() > deadline:
            raise in_progress()
        await asyncio.sleep(POLL_SECONDS)
    keepalive = asyncio.create_task(_keep_claim(sessionmaker, client_id, key))
    try:
        status, body = await produce()
    except BaseException:
        keepalive.cancel()
        # Not answered (a problem, an error, or the request cancelled): let a retry run it.
        # In a task of its own, so that a cancelled request still lets go of its claim.
        release = asyncio.create_task(_release(sessionmaker, client_id, key))
        _releases.add(release)
        release.add_done_callback(_releases.discard)
        raise
    keepalive.cancel()
    if status >= 500:
        await _release(sessionmaker, client_id, key)
    else:
        await _complete(sessionmaker, client_id, key, status, body)
    return JSONResponse(body, status_code=status)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _claim(sessionmaker: async_sessionmaker[AsyncSession], record: dict[str, Any]) -> bool:
    """Insert the key's record, in progress; False if it is already there."""
    table = table_of(IdempotencyRow)
    async with sessionmaker() as session:
        stmt = insert_stmt(dialect_of(sessionmaker), table).values(
            **record, status_code=IN_PROGRESS, response={}, created_at=datetime.now(UTC)
        )
        # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT DO NOTHING.
        result: Any = await session.exec(stmt.on_conflict_do_nothing().returning(table.c.key))
        inserted = result.first() is not None
        await session.commit()
        return inserted


async def _renew(
    sessionmaker: async_sessionmaker[AsyncSession],
    client_id: str,
    key: str,
    *,
    lapsed_only: bool,
) -> bool:
    """Stamp a claim still in progress as alive now (only a lapsed one: a take-over, where one
    taker wins); True if this call renewed it."""
    table = table_of(IdempotencyRow)
    now = datetime.now(UTC)
    stmt = (
        update(table)
        .where(
            table.c.client_id == client_id,
            table.c.key == key,
            table.c.status_code == IN_PROGRESS,
            *([table.c.created_at < now - LEASE] if lapsed_only else []),
        )
        .values(created_at=now)
    )
    async with sessionmaker() as session:
        result: Any = await session.exec(stmt)
        await session.commit()
        return int(result.rowcount or 0) == 1


async def _take_over(
    sessionmaker: async_sessionmaker[AsyncSession], client_id: str, key: str
) -> bool:
    """Claim a record left in progress by a request that never finished (one taker wins)."""
    return await _renew(sessionmaker, client_id, key, lapsed_only=True)


async def _keep_claim(
    sessionmaker: async_sessionmaker[AsyncSession], client_id: str, key: str
) -> None:
    """While the first request works, renew its claim (``created_at``) so that no repeat
    takes it over; a process that dies stops renewing, and its claim lapses after ``LEASE``."""
    while True:
        await asyncio.sleep(KEEPALIVE_SECONDS)
        try:
            await _renew(sessionmaker, client_id, key, lapsed_only=False)
        except Exception:  # the database is briefly away: try again at the next beat
            log.warning("could not renew an idempotency claim", exc_info=True)


async def _complete(
    sessionmaker: async_sessionmaker[AsyncSession],
    client_id: str,
    key: str,
    status: int,
    body: dict[str, Any],
) -> None:
    table = table_of(IdempotencyRow)
    stmt = (
        update(table)
        .where(table.c.client_id == client_id, table.c.key == key)
        .values(status_code=status, response=body)
    )
    async with sessionmaker() as session:
        await session.exec(stmt)
        await session.commit()


async def _release(
    sessionmaker: async_sessionmaker[AsyncSession], client_id: str, key: str
) -> None:
    table = table_of(IdempotencyRow)
    stmt = delete(table).where(
        table.c.client_id == client_id,
        table.c.key == key,
        table.c.status_code == IN_PROGRESS,
    )
    async with sessionmaker() as session:
        await session.exec(stmt)
        await session.commit()
