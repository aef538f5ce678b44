"""Reads and writes of the registries (mediators, venues, councils, providers).

Each write runs in its own transaction and is committed before the API answers, so the
answer (and an ``Idempotency-Key`` record of it) never claims a change that did not happen.
Rows are never deleted: bookings and referrals refer to them, so they are deactivated.

Every write is audited in the same transaction (``registry_change``): which API key (id and
client name) made it, when, and each changed field before and after.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic_core import to_jsonable_python
from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.store import cursors
from models.store.auth_tables import RegistryChangeRow
from models.store.tables import table_of

Row = TypeVar("Row", bound=SQLModel)


class AlreadyExists(Exception):
    """A row with this key is already registered."""


BadCursor = cursors.BadCursor  # not a cursor this API issued (or one altered since)


@dataclass(frozen=True)
class Audit:
    """Who is changing registry ``kind`` (e.g. ``providers``): the API key's id and name."""

    kind: str
    key_id: str
    name: str

    def row(self, entry_id: str, action: str, changes: dict[str, Any]) -> RegistryChangeRow:
        return RegistryChangeRow(
            kind=self.kind,
            entry_id=entry_id,
            action=action,
            actor_key_id=self.key_id,
            actor_name=self.name,
            recorded_at=datetime.now(UTC),
            changes=changes,
        )


#: Never audited: set once by the service itself.
_NOT_AUDITED = frozenset({"created_at"})


def _jsonable(value: Any) -> Any:
    return to_jsonable_python(value)


@dataclass(frozen=True)
class RowPage(Generic[Row]):
    rows: list[Row]
    next_cursor: str | None


def _key_column(model: type[SQLModel]) -> Any:
    keys = list(table_of(model).primary_key.columns)
    assert len(keys) == 1, f"{model.__name__} needs a single-column key"
    return keys[0]


def encode_cursor(key: str, signer: cursors.CursorSigner) -> str:
    return signer.sign(key.encode())


def decode_cursor(cursor: str, signer: cursors.CursorSigner) -> str:
    try:
        key = signer.open(cursor).decode()
    except UnicodeDecodeError as exc:
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
    signer: cursors.CursorSigner,
    keep: Callable[[Row], bool] | None = None,
) -> RowPage[Row]:
    """Rows in key order, ``limit`` at a time (keyset on the key; signed cursors).

    ``keep``: only the rows it accepts count (a rule the database cannot evaluate). Rows are
    read in batches until the page is full, so a page is never short while more follow.
    """
    key = _key_column(model)
    after = decode_cursor(cursor, signer) if cursor is not None else None
    kept: list[Row] = []
    while len(kept) <= limit:
        query = select(model).where(*where)
        if after is not None:
            query = query.where(key > after)
        batch: list[Row] = list((await session.exec(query.order_by(key).limit(limit + 1))).all())
        kept += [row for row in batch if keep is None or keep(row)]
        if len(batch) <= limit:
            break  # nothing more to read
        after = getattr(batch[-1], key.name)
    more = len(kept) > limit
    rows = kept[:limit]
    last = getattr(rows[-1], key.name) if rows else None
    next_cursor = encode_cursor(last, signer) if more and last else None
    return RowPage(rows=rows, next_cursor=next_cursor)


async def insert(maker: async_sessionmaker[AsyncSession], row: Row, audit: Audit) -> Row:
    """Register ``row``; ``AlreadyExists`` if its key is taken."""
    model = type(row)
    key = getattr(row, _key_column(model).name)
    created = {
        name: {"before": None, "after": _jsonable(value)}
        for name, value in row.model_dump().items()
        if name not in _NOT_AUDITED
    }
    async with maker() as session:
        if await session.get(model, key) is not None:
            raise AlreadyExists(key)
        session.add(row)
        session.add(audit.row(key, "created", created))
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
    audit: Audit,
    *,
    action: str = "changed",
) -> Row | None:
    """Apply ``changes`` to the row with ``key``; None if there is no such row. Only fields
    whose value really changes are audited (nothing at all: no audit row)."""
    async with maker() as session:
        row = await session.get(model, key, with_for_update=True)
        if row is None:
            return None
        changed: dict[str, Any] = {}
        for name, value in changes.items():
            before, after = _jsonable(getattr(row, name)), _jsonable(value)
            if before != after:
                changed[name] = {"before": before, "after": after}
            setattr(row, name, value)
        session.add(row)
        if changed:
            session.add(audit.row(key, action, changed))
        await session.commit()
        await session.refresh(row)
    return row


async def changes(
    session: AsyncSession, kind: str, entry_id: str, *, after: int, limit: int
) -> list[RegistryChangeRow]:
    """An entry's audit trail in order, after sequence number ``after``."""
    query = (
        select(RegistryChangeRow)
        .where(
            col(RegistryChangeRow.kind) == kind,
            col(RegistryChangeRow.entry_id) == entry_id,
            col(RegistryChangeRow.seq) > after,
        )
        .order_by(col(RegistryChangeRow.seq))
        .limit(limit)
    )
    return list((await session.exec(query)).all())
