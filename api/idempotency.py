"""``Idempotency-Key``: a repeated POST with the same key and body gets the first response.

The same key with a different body is a 422. Records are per API client. This sits on top
of Temporal's own protection (a referral's workflow id and a command's update id are derived
from the key), so even two identical requests racing each other create one referral and run
one command.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import Problem
from models.db import dialect_of, insert_stmt
from models.tables import IdempotencyRow, table_of

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
    if key is None:
        status, body = await produce()
        return JSONResponse(body, status_code=status)
    async with sessionmaker() as session:
        found = await session.get(IdempotencyRow, (client_id, key))
    if found is not None:
        if found.request_hash != request_hash or found.path != path:
            raise Problem(
                422,
                "Idempotency-Key reused",
                "This Idempotency-Key was already used with a different request; use a new key "
                "for a new request.",
                type_="idempotency-key-reused",
                errors=[{"field": "header.Idempotency-Key", "message": "reused with another body"}],
            )
        return JSONResponse(
            found.response, status_code=found.status_code, headers={"Idempotent-Replayed": "true"}
        )
    status, body = await produce()
    if status < 500:
        async with sessionmaker() as session:
            stmt = insert_stmt(dialect_of(sessionmaker), table_of(IdempotencyRow)).values(
                client_id=client_id,
                key=key,
                method=method,
                path=path,
                request_hash=request_hash,
                status_code=status,
                response=body,
                created_at=datetime.now(UTC),
            )
            await session.exec(stmt.on_conflict_do_nothing())
            await session.commit()
    return JSONResponse(body, status_code=status)
