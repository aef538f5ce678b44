"""Listing referrals from the read model: filters, keyset pagination, signed cursors.

Pages are keyset pages on ``(sort key, id)`` so that they are stable while referrals change
and cost the same at page 1 and page 2,000. Sorting by next deadline puts referrals with no
open deadline (most closed ones) after all the others, by id; that is done as two index
range scans (dated rows, then undated rows), never a sort of the whole table. Only the
listing columns are read: never the snapshot, which holds personal data. Cursors are signed
(``models/store/cursors.py``): a forged or altered one is refused before it reaches a query.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, literal, select, tuple_
from sqlmodel.ext.asyncio.session import AsyncSession

from models.domain.clock import start_of_london_day
from models.store import cursors
from models.store.auth_tables import ApiKeyRow
from models.store.tables import ReferralEventRow, ReferralRow, table_of

REFERRALS = table_of(ReferralRow)
EVENTS = table_of(ReferralEventRow)

LIST_COLUMNS = (
    REFERRALS.c.id,
    REFERRALS.c.route,
    REFERRALS.c.status,
    REFERRALS.c.local_authority,
    REFERRALS.c.next_deadline_on,
    REFERRALS.c.next_deadline_name,
    REFERRALS.c.breached,
    REFERRALS.c.certificate_kind,
    REFERRALS.c.certificate_issued_on,
    REFERRALS.c.appeal_deadline,
    REFERRALS.c.outcome,
    REFERRALS.c.created_at,
    REFERRALS.c.updated_at,
    REFERRALS.c.external_reference,
)


class Sort(StrEnum):
    NEXT_DEADLINE = "next_deadline"  # soonest first; no open deadline last
    CREATED = "created"  # oldest first
    CREATED_DESC = "-created"  # newest first


BadCursor = cursors.BadCursor  # the cursor is not one this API issued for this query


@dataclass(frozen=True)
class Filters:
    status: tuple[str, ...] = ()
    route: str | None = None
    local_authority: str | None = None
    due_after: date | None = None  # next deadline on or after
    due_before: date | None = None  # next deadline on or before
    breached: bool | None = None
    created_from: date | None = None  # Europe/London days, inclusive
    created_to: date | None = None
    external_reference: str | None = None  # the council's own case reference
    # The councils the caller may see (None: every council); not part of the query's identity.
    councils: frozenset[str] | None = None

    def fingerprint(self, sort: Sort) -> str:
        raw = json.dumps(
            [sort.value, sorted(self.status), self.route, self.local_authority]
            + [
                str(v)
                for v in (
                    self.due_after,
                    self.due_before,
                    self.breached,
                    self.created_from,
                    self.created_to,
                    self.external_reference,
                )
            ]
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def where(self) -> list[ColumnElement[bool]]:
        r = REFERRALS.c
        clauses: list[ColumnElement[bool]] = []
        if len(self.status) == 1:
            clauses.append(r.status == self.status[0])
        elif self.status:
            clauses.append(r.status.in_(sorted(set(self.status))))
        if self.route is not None:
            clauses.append(r.route == self.route)
        if self.local_authority is not None:
            clauses.append(r.local_authority == self.local_authority)
        if self.external_reference is not None:
            clauses.append(r.external_reference == self.external_reference)
        if self.councils is not None:
            if len(self.councils) == 1:
                clauses.append(r.local_authority == next(iter(self.councils)))
            else:
                clauses.append(r.local_authority.in_(sorted(self.councils)))
        if self.due_after is not None:
            clauses.append(r.next_deadline_on >= self.due_after)
        if self.due_before is not None:
            clauses.append(r.next_deadline_on <= self.due_before)
        if self.breached is not None:
            clauses.append(r.breached == self.breached)
        if self.created_from is not None:
            clauses.append(r.created_at >= start_of_london_day(self.created_from))
        if self.created_to is not None:
            clauses.append(r.created_at < start_of_london_day(self.created_to + timedelta(days=1)))
        return clauses

    @property
    def needs_deadline(self) -> bool:
        return self.due_after is not None or self.due_before is not None


@dataclass(frozen=True)
class Position:
    """Where a page ends: the last row's sort key (None = an undated row) and id."""

    key: str | None
    id: str


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(
    sort: Sort, filters: Filters, position: Position, signer: cursors.CursorSigner
) -> str:
    payload = {"s": sort.value, "f": filters.fingerprint(sort), "k": position.key, "i": position.id}
    return signer.sign(json.dumps(payload, separators=(",", ":")).encode())


def decode_cursor(
    cursor: str, sort: Sort, filters: Filters, signer: cursors.CursorSigner
) -> Position:
    raw = signer.open(cursor)  # BadCursor unless this service wrote it
    try:
        payload = json.loads(raw)
        key, ident = payload["k"], payload["i"]
        if not isinstance(ident, str) or not (key is None or isinstance(key, str)):
            raise TypeError("malformed cursor")
        same_query = payload["s"] == sort.value and payload["f"] == filters.fingerprint(sort)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise BadCursor("not a cursor from this API") from exc
    if not same_query:
        raise BadCursor(
            "this cursor belongs to another query: send the same filters and sort as the "
            "page it came from"
        )
    try:
        if key is not None:
            _key_value(sort, key)
    except ValueError as exc:
        raise BadCursor("not a cursor from this API") from exc
    return Position(key=key, id=ident)


def _key_value(sort: Sort, key: str) -> date | datetime:
    if sort is Sort.NEXT_DEADLINE:
        return date.fromisoformat(key)
    value = datetime.fromisoformat(key)
    if value.tzinfo is None:
        raise ValueError("naive instant in cursor")
    return value


def _key_of(sort: Sort, row: dict[str, Any]) -> str | None:
    if sort is Sort.NEXT_DEADLINE:
        due: date | None = row["next_deadline_on"]
        return due.isoformat() if due is not None else None
    created: datetime = row["created_at"]
    return created.isoformat()


def statements(
    filters: Filters,
    *,
    sort: Sort = Sort.NEXT_DEADLINE,
    limit: int = 50,
    cursor: str | None = None,
    signer: cursors.CursorSigner | None = None,
) -> list[Select[Any]]:
    """The queries behind one page, run in order until ``limit + 1`` rows are found."""
    signer = signer or cursors.CursorSigner.development()
    after = decode_cursor(cursor, sort, filters, signer) if cursor else None
    r = REFERRALS.c
    base = select(*LIST_COLUMNS).where(*filters.where())
    queries: list[Select[Any]] = []
    if sort is Sort.NEXT_DEADLINE:
        dated = base.where(r.next_deadline_on.is_not(None))
        undated = base.where(r.next_deadline_on.is_(None))
        if after is None or after.key is not None:
            if after is not None and after.key is not None:
                key = _key_value(sort, after.key)
                bound = tuple_(literal(key, r.next_deadline_on.type), literal(after.id, r.id.type))
                dated = dated.where(tuple_(r.next_deadline_on, r.id) > bound)
            queries.append(dated.order_by(r.next_deadline_on, r.id))
        elif after is not None:
            undated = undated.where(r.id > after.id)
        if not filters.needs_deadline:
            queries.append(undated.order_by(r.id))
    else:
        descending = sort is Sort.CREATED_DESC
        query = base
        if after is not None and after.key is not None:
            key = _key_value(sort, after.key)
            pair = tuple_(r.created_at, r.id)
            bound = tuple_(literal(key, r.created_at.type), literal(after.id, r.id.type))
            query = query.where(pair < bound if descending else pair > bound)
        order = (r.created_at.desc(), r.id.desc()) if descending else (r.created_at, r.id)
        queries.append(query.order_by(*order))
    return [q.limit(limit + 1) for q in queries]


async def list_referrals(
    session: AsyncSession,
    filters: Filters,
    *,
    sort: Sort = Sort.NEXT_DEADLINE,
    limit: int = 50,
    cursor: str | None = None,
    signer: cursors.CursorSigner | None = None,
) -> Page:
    """One page; ``signer`` signs and checks cursors (the API passes its own; None: the public
    development key's, for tests and tools)."""
    signer = signer or cursors.CursorSigner.development()
    want = limit + 1
    rows: list[dict[str, Any]] = []
    conn = await session.connection()
    for query in statements(filters, sort=sort, limit=limit, cursor=cursor, signer=signer):
        result = await conn.execute(query.limit(want - len(rows)))
        rows.extend(dict(m) for m in result.mappings())
        if len(rows) >= want:
            break
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (
        encode_cursor(sort, filters, Position(_key_of(sort, rows[-1]), rows[-1]["id"]), signer)
        if more
        else None
    )
    return Page(rows=rows, next_cursor=next_cursor)


async def referral_exists(session: AsyncSession, referral_id: str) -> bool:
    conn = await session.connection()
    found = await conn.execute(select(REFERRALS.c.id).where(REFERRALS.c.id == referral_id))
    return found.first() is not None


async def timeline(
    session: AsyncSession, referral_id: str, *, after_seq: int = 0, limit: int = 500
) -> Sequence[dict[str, Any]]:
    """The referral's events in order (``seq`` ascending), after ``after_seq``."""
    e = EVENTS.c
    conn = await session.connection()
    result = await conn.execute(
        select(e.seq, e.type, e.occurred_on, e.recorded_at, e.actor, e.data)
        .where(e.referral_id == referral_id, e.seq > after_seq)
        .order_by(e.seq)
        .limit(limit)
    )
    return [dict(m) for m in result.mappings()]


async def key_names(session: AsyncSession, key_ids: set[str]) -> dict[str, str]:
    """The client name of each API key id among ``key_ids`` (actors of a timeline)."""
    if not key_ids:
        return {}
    keys = table_of(ApiKeyRow).c
    conn = await session.connection()
    found = await conn.execute(select(keys.key_id, keys.name).where(keys.key_id.in_(key_ids)))
    return {str(key_id): str(name) for key_id, name in found.all()}
