"""Listing referrals: filters and keyset pages, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from models.store import listing
from models.store.listing import Filters, Sort
from models.store.tables import ReferralRow
from tests.conftest import Database
from tests.factories import referral_row

STATUSES = ("arranging_meeting", "meeting_booked", "tracking_actions", "closed")
COUNCILS = ("E10000015", "E10000016")
BASE_DAY = date(2027, 3, 1)
BASE_AT = datetime(2027, 1, 4, 9, tzinfo=UTC)


def seeded_rows(n: int = 60) -> list[ReferralRow]:
    """Rows with ties on every sort key and undated (closed) rows among them."""
    rng = random.Random(7)
    rows = []
    for i in range(n):
        status = STATUSES[i % len(STATUSES)]
        due = None if status == "closed" else BASE_DAY + timedelta(days=rng.randrange(6))
        rows.append(
            referral_row(
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                route="mediation" if i % 3 else "disagreement_resolution",
                status=status,
                local_authority=COUNCILS[i % 2],
                next_deadline_on=due,
                next_deadline_name="mediation_must_be_arranged_by" if due else None,
                breached=i % 5 == 0,
                # Several rows share each instant: the id breaks the tie.
                created_at=BASE_AT + timedelta(hours=rng.randrange(10)),
                outcome="no_agreement" if status == "closed" else None,
            )
        )
    return rows


async def seed(db: Database, rows: list[ReferralRow]) -> None:
    async with db.sessionmaker() as session:
        session.add_all(rows)
        await session.commit()


async def every_page(
    db: Database, filters: Filters, sort: Sort, limit: int
) -> tuple[list[str], int]:
    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        async with db.sessionmaker() as session:
            page = await listing.list_referrals(
                session, filters, sort=sort, limit=limit, cursor=cursor
            )
        pages += 1
        assert len(page.rows) <= limit
        ids += [r["id"] for r in page.rows]
        if page.next_cursor is None:
            return ids, pages
        assert len(page.rows) == limit
        cursor = page.next_cursor


def expected(rows: list[ReferralRow], keep: Callable[[ReferralRow], bool], sort: Sort) -> list[str]:
    kept = [r for r in rows if keep(r)]
    if sort is Sort.NEXT_DEADLINE:
        dated = sorted(
            (r for r in kept if r.next_deadline_on), key=lambda r: (r.next_deadline_on, r.id)
        )
        undated = sorted((r for r in kept if r.next_deadline_on is None), key=lambda r: r.id)
        return [r.id for r in dated + undated]
    ordered = sorted(kept, key=lambda r: (r.created_at, r.id))
    if sort is Sort.CREATED_DESC:
        ordered.reverse()
    return [r.id for r in ordered]


CASES: list[tuple[str, Filters, Callable[[ReferralRow], bool]]] = [
    ("everything", Filters(), lambda r: True),
    ("status", Filters(status=("arranging_meeting",)), lambda r: r.status == "arranging_meeting"),
    (
        "two statuses",
        Filters(status=("closed", "meeting_booked")),
        lambda r: r.status in ("closed", "meeting_booked"),
    ),
    ("route", Filters(route="disagreement_resolution"), lambda r: r.route != "mediation"),
    ("council", Filters(local_authority="E10000016"), lambda r: r.local_authority == "E10000016"),
    ("breached", Filters(breached=True), lambda r: r.breached),
    ("not breached", Filters(breached=False), lambda r: not r.breached),
    (
        "due window",
        Filters(due_after=BASE_DAY + timedelta(days=1), due_before=BASE_DAY + timedelta(days=3)),
        lambda r: (
            r.next_deadline_on is not None
            and BASE_DAY + timedelta(days=1) <= r.next_deadline_on <= BASE_DAY + timedelta(days=3)
        ),
    ),
    (
        "created on one London day",
        # 4 Jan 2027 is GMT: the London day is the UTC day.
        Filters(created_from=date(2027, 1, 4), created_to=date(2027, 1, 4)),
        lambda r: r.created_at.date() == date(2027, 1, 4),
    ),
    (
        "council, status and due",
        Filters(
            status=("arranging_meeting",),
            local_authority="E10000015",
            due_before=BASE_DAY + timedelta(days=2),
        ),
        lambda r: (
            r.status == "arranging_meeting"
            and r.local_authority == "E10000015"
            and r.next_deadline_on is not None
            and r.next_deadline_on <= BASE_DAY + timedelta(days=2)
        ),
    ),
]


@pytest.mark.parametrize("sort", list(Sort), ids=[s.value for s in Sort])
async def test_pages_cover_each_match_once_in_order_when_filtered(db: Database, sort: Sort) -> None:
    rows = seeded_rows()
    await seed(db, rows)
    for name, filters, keep in CASES:
        want = expected(rows, keep, sort)
        assert want, f"the seed has no rows for {name}"
        got, pages = await every_page(db, filters, sort, limit=7)
        assert got == want, name
        assert pages == -(-len(want) // 7), name


async def test_referrals_without_open_deadline_come_last_when_sorted_by_deadline(
    db: Database,
) -> None:
    rows = seeded_rows(12)
    await seed(db, rows)
    async with db.sessionmaker() as session:
        page = await listing.list_referrals(session, Filters(), limit=200)
    dues = [r["next_deadline_on"] for r in page.rows]
    first_undated = dues.index(None)
    assert all(d is not None for d in dues[:first_undated])
    assert all(d is None for d in dues[first_undated:])
    assert dues[:first_undated] == sorted(dues[:first_undated])


async def test_next_page_skips_nothing_when_a_referral_is_added_before_the_cursor(
    db: Database,
) -> None:
    rows = seeded_rows(20)
    await seed(db, rows)
    async with db.sessionmaker() as session:
        first = await listing.list_referrals(session, Filters(), limit=5)
    assert first.next_cursor is not None
    # A new referral that sorts before everything seen so far.
    await seed(
        db, [referral_row(next_deadline_on=BASE_DAY - timedelta(days=30), next_deadline_name="x")]
    )
    seen = [r["id"] for r in first.rows]
    cursor: str | None = first.next_cursor
    while cursor:
        async with db.sessionmaker() as session:
            page = await listing.list_referrals(session, Filters(), limit=5, cursor=cursor)
        seen += [r["id"] for r in page.rows]
        cursor = page.next_cursor
    assert sorted(seen) == sorted(r.id for r in rows)


@pytest.mark.parametrize(
    ("cursor_of", "filters", "sort", "message"),
    [
        (lambda c: c[:-3] + "!!!", Filters(), Sort.CREATED, "not a cursor"),
        (lambda c: "eyJzIjoibmV4dF9kZWFkbGluZSJ9", Filters(), Sort.CREATED, "not a cursor"),
        (lambda c: c, Filters(breached=False), Sort.CREATED, "another query"),
        (lambda c: c, Filters(), Sort.NEXT_DEADLINE, "another query"),
    ],
    ids=["garbled", "incomplete", "other-filters", "other-sort"],
)
async def test_cursor_is_refused_when_not_from_the_same_query(
    db: Database, cursor_of: Callable[[str], str], filters: Filters, sort: Sort, message: str
) -> None:
    await seed(db, seeded_rows(10))
    async with db.sessionmaker() as session:
        first = await listing.list_referrals(session, Filters(), sort=Sort.CREATED, limit=3)
        assert first.next_cursor is not None
        with pytest.raises(listing.BadCursor, match=message):
            await listing.list_referrals(
                session, filters, sort=sort, limit=3, cursor=cursor_of(first.next_cursor)
            )


async def test_list_reads_no_snapshot_when_listing(db: Database) -> None:
    """List rows carry listing columns only: the snapshot (personal data) is never read."""
    await seed(db, [referral_row(snapshot={"child": {"name": "Secret Name"}})])
    async with db.sessionmaker() as session:
        page = await listing.list_referrals(session, Filters(), limit=10)
    row: dict[str, Any] = page.rows[0]
    assert "snapshot" not in row
    assert "Secret Name" not in repr(page.rows)
