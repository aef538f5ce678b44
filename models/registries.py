"""Reads and writes of the registries (mediators, venues, councils, providers).

Each write runs in its own transaction and is committed before the API answers, so the
answer (and an ``Idempotency-Key`` record of it) never claims a change that did not happen.
Rows are never deleted: bookings and referrals refer to them, so they are deactivated.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import table_of

Row = TypeVar("Row", bound=SQLModel)


class AlreadyExists(Exception):
    """A row with this key is already registered."""


class BadCursor(ValueError):
    """Not a cursor this API issued."""


@dataclass(frozen=True)
class RowPage(Generic[Row]):
    rows: list[Row]
    next_cursor: str | None


def _key_column(model: type[SQLModel]) -> Any:
    keys = list(table_of(model).primary_key.columns)
    assert len(keys) == 1, f"{model.__name__} needs a single-column key"
    return keys[0]


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        key = raw.decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadCursor("not a cursor from this API") from exc
    if not key:
        raise BadCursor("not a cursor from this API")
    return key


async def page(
    session: AsyncSession,
    model: type[Row],
    where: Sequence[ColumnElement[bool]],
    *,
    limit: int,
    cursor: str | None,
) -> RowPage[Row]:
    """Rows in key order, ``limit`` at a time (keyset on the key)."""
    key = _key_column(model)
    query = select(model).where(*where)
    if cursor is not None:
        query = query.where(key > decode_cursor(cursor))
    result = await session.exec(query.order_by(key).limit(limit + 1))
    rows: list[Row] = list(result.all())
    more = len(rows) > limit
    rows = rows[:limit]
    last = getattr(rows[-1], key.name) if rows else None
    return RowPage(rows=rows, next_cursor=encode_cursor(last) if more and last else None)


async def insert(maker: async_sessionmaker[AsyncSession], row: Row) -> Row:
    """Register ``row``; ``AlreadyExists`` if its key is taken."""
    model = type(row)
    key = getattr(row, _key_column(model).name)
    async with maker() as session:
        if await session.get(model, key) is not None:
            raise AlreadyExists(key)
        session.add(row)
        try:
            await session.commit()
        except IntegrityError as exc:  # a concurrent insert of the same key
            raise AlreadyExists(key) from exc
        await session.refresh(row)
    return row


async def update(
    maker: async_sessionmaker[AsyncSession],
    model: type[Row],
    key: str,
    changes: Mapping[str, Any],
) -> Row | None:
    """Apply ``changes`` to the row with ``key``; None if there is no such row."""
    async with maker() as session:
        row = await session.get(model, key, with_for_update=True)
        if row is None:
            return None
        for name, value in changes.items():
            setattr(row, name, value)
        session.add(row)
        await session.commit()
        await session.refresh(row)
    return row
