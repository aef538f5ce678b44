"""Benchmark ``GET /v1/referrals`` on PostgreSQL with 100,000 referrals, over real HTTP.

Creates (or re-creates) a database, migrates it, seeds it with referrals shaped like the
projection's rows (a real snapshot in each), starts the API under uvicorn in a subprocess
and times typical list requests one at a time from this process with a keep-alive client.
Prints p50/p99 (and max) per scenario and overall, and with ``--explain`` each query plan.

    .venv/bin/python bench/list_referrals.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/sendmed_bench

This is a measurement, not a test: nothing asserts on the figures. Results go in
docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from pydantic import TypeAdapter
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.keys import create_key  # noqa: E402
from bench.harness import api_argv, free_port, percentile  # noqa: E402
from models import migrate  # noqa: E402
from models.adapters.bank_holidays import england_and_wales_calendar  # noqa: E402
from models.domain import deadlines as dl  # noqa: E402
from models.domain import intake  # noqa: E402
from models.domain import transitions as tr  # noqa: E402
from models.domain.referral import ReferralCreate  # noqa: E402
from models.store import listing  # noqa: E402
from models.store.db import make_engine, make_sessionmaker  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/sendmed_bench"
HERTS = "E10000015"
COUNCILS = [f"E100000{n:02d}" for n in range(1, 31)]  # 30 councils, Herts among them
OPEN_STATUSES = [
    ("awaiting_information_session", 14),
    ("awaiting_family_decision", 8),
    ("awaiting_party_responses", 6),
    ("arranging_meeting", 30),
    ("meeting_booked", 18),
    ("agreement_awaiting_signature", 6),
    ("tracking_actions", 18),
]
DEADLINE_NAMES = {
    "awaiting_information_session": dl.REFERRAL_ACTIONED_BY,
    "awaiting_family_decision": dl.CONTACT_ADVISER_BY,
    "awaiting_party_responses": dl.PARTY_RESPONSES_DUE_BY,
    "arranging_meeting": dl.MEDIATION_ARRANGED_BY,
    "meeting_booked": dl.MEDIATION_ARRANGED_BY,
    "agreement_awaiting_signature": dl.CERTIFICATE_DUE_BY,
    "tracking_actions": "action:action-1",
}
OUTCOMES = [
    ("declined_mediation", 35),
    ("no_agreement", 15),
    ("partial_agreement", 10),
    ("agreement", 20),
    ("withdrawn", 12),
    ("parties_declined", 5),
    ("no_meeting", 3),
]
CERTIFICATE_OF = {
    "declined_mediation": "declined_mediation",
    "no_agreement": "after_mediation",
    "partial_agreement": "after_mediation",
    "no_meeting": "deemed",
}
COLUMNS = (
    "id",
    "route",
    "status",
    "local_authority",
    "version",
    "received_on",
    "created_at",
    "updated_at",
    "next_deadline_on",
    "next_deadline_name",
    "breached",
    "certificate_kind",
    "certificate_issued_on",
    "appeal_deadline",
    "outcome",
    "closed_on",
    "snapshot",
)


# --------------------------------------------------------------------------- database


def recreate_database(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')


def snapshot_template(today: date) -> str:
    """A real referral snapshot (as the projection stores it), with the id left to fill in."""
    body = {
        "route": "mediation",
        "local_authority": HERTS,
        "referrer": {
            "role": "parent",
            "contact": {"name": "Bench Parent", "email": "parent@example.org"},
            "relationship_to_child": "mother",
        },
        "child": {"name": "Bench Child", "date_of_birth": "2015-03-09"},
        "decision": {"type": "refusal_to_assess", "letter_date": today.isoformat()},
        "mediation_issues": ["The council refused to carry out an EHC needs assessment"],
        "local_authority_contact": {
            "id": "la",
            "kind": "local_authority",
            "organisation": "Hertfordshire County Council",
            "role": "SEN officer",
            "contact": {"name": "SEN Officer", "email": "sen@example.gov.uk"},
        },
        "invitees": [
            {
                "id": "senco",
                "kind": "school",
                "organisation": "Oakfield Primary School",
                "role": "SENCO",
                "contact": {"name": "Pat Senco", "email": "senco@example.sch.uk"},
            }
        ],
    }
    request = TypeAdapter(ReferralCreate).validate_python(body)
    ctx = tr.Context(
        today=today,
        cal=england_and_wales_calendar(today.year - 1, today.year + 2),
        policy=tr.Policy(),
    )
    opened = intake.open_referral(
        "@@ID@@", request, received_on=today, created_at=datetime.now(UTC), ctx=ctx
    )
    return json.dumps(opened.referral.model_dump(mode="json"), separators=(",", ":"))


def pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def rows(n: int, today: date, seed: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    template = snapshot_template(today)
    council_weights = [rng.randint(1, 6) for _ in COUNCILS]
    council_weights[COUNCILS.index(HERTS)] = 10
    now = datetime.now(UTC)
    for _ in range(n):
        rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        created = now - timedelta(seconds=rng.randrange(3 * 365 * 86400))
        received = created.date()
        route = "mediation" if rng.random() < 0.75 else "disagreement_resolution"
        council = rng.choices(COUNCILS, weights=council_weights)[0]
        age = (today - received).days
        closed = age > 120 or rng.random() < 0.15
        due = name = certificate = issued = appeal = outcome = closed_on = None
        breached = False
        if closed:
            status = "closed"
            outcome = pick(rng, OUTCOMES)
            closed_on = received + timedelta(days=rng.randint(3, min(max(age, 3), 120)))
            if route == "mediation" and outcome in CERTIFICATE_OF:
                certificate, issued = CERTIFICATE_OF[outcome], closed_on
                appeal = issued + timedelta(days=rng.randint(28, 62))
            breached = rng.random() < 0.04
        else:
            status = pick(rng, OPEN_STATUSES)
            if route == "disagreement_resolution" and status in ("awaiting_family_decision",):
                status = "awaiting_party_responses"
            due = today + timedelta(days=rng.randint(-10, 75))
            name = DEADLINE_NAMES[status]
            breached = due < today and rng.random() < 0.6
        snapshot = template.replace("@@ID@@", rid)
        yield (
            rid,
            route,
            status,
            council,
            rng.randint(1, 12),
            received,
            created,
            created + timedelta(days=rng.randint(0, 30)),
            due,
            name,
            breached,
            certificate,
            issued,
            appeal,
            outcome,
            closed_on,
            snapshot,
        )


def seed(url: str, n: int, today: date) -> float:
    started = time.perf_counter()
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        with conn.cursor() as cur:
            copy_sql = f"COPY referral ({', '.join(COLUMNS)}) FROM STDIN"
            with cur.copy(copy_sql) as copy:
                for row in rows(n, today, seed=20261128):
                    copy.write_row(row)
        conn.commit()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE referral")
    return time.perf_counter() - started


def api_key(url: str) -> str:
    """A key with the read scope for every council, as a back office would hold."""

    async def create() -> str:
        engine = make_engine(url)
        try:
            key = await create_key(
                make_sessionmaker(engine), name="bench", scopes=["referrals:read"]
            )
        finally:
            await engine.dispose()
        return key.token

    return asyncio.run(create())


# --------------------------------------------------------------------------- scenarios


def scenarios(today: date) -> list[tuple[str, dict[str, Any], int]]:
    """(name, query parameters, page to time: 1 = first page, k = after following k-1)."""
    week = (today + timedelta(days=7)).isoformat()
    return [
        ("no filter (next deadline)", {}, 1),
        ("status=arranging_meeting", {"status": "arranging_meeting"}, 1),
        ("status=arranging_meeting, page 20", {"status": "arranging_meeting"}, 20),
        ("local_authority=E10000015", {"local_authority": HERTS}, 1),
        (
            "local_authority + status",
            {"local_authority": HERTS, "status": "meeting_booked"},
            1,
        ),
        ("due_before=+7 days", {"due_before": week}, 1),
        ("breached=true", {"breached": "true"}, 1),
        (
            "route=DR + status",
            {"route": "disagreement_resolution", "status": "awaiting_party_responses"},
            1,
        ),
        ("status=closed (no deadline)", {"status": "closed"}, 1),
        (
            "created last 30 days, newest first",
            {"created_from": (today - timedelta(days=30)).isoformat(), "sort": "-created"},
            1,
        ),
        ("local_authority, newest first", {"local_authority": HERTS, "sort": "-created"}, 1),
        (
            "status=agreement_awaiting_signature, oldest first",
            {"status": "agreement_awaiting_signature", "sort": "created"},
            1,
        ),
        (
            "two statuses + council + due window",
            {
                "status": ["arranging_meeting", "meeting_booked"],
                "local_authority": HERTS,
                "due_after": today.isoformat(),
                "due_before": (today + timedelta(days=30)).isoformat(),
            },
            1,
        ),
    ]


def cursor_for(http: httpx.Client, params: dict[str, Any], page: int) -> str | None:
    cursor = None
    for _ in range(page - 1):
        body = http.get(
            "/v1/referrals", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        body.raise_for_status()
        cursor = body.json()["next_cursor"]
        assert cursor, "ran out of pages"
    return cursor


def explain(url: str, today: date) -> None:
    engine = create_engine(migrate.sync_url(url))
    with engine.connect() as conn:
        for name, params, _ in scenarios(today):
            filters = listing.Filters(
                status=tuple(params["status"])
                if isinstance(params.get("status"), list)
                else ((params["status"],) if "status" in params else ()),
                route=params.get("route"),
                local_authority=params.get("local_authority"),
                due_after=date.fromisoformat(params["due_after"])
                if "due_after" in params
                else None,
                due_before=date.fromisoformat(params["due_before"])
                if "due_before" in params
                else None,
                breached=True if params.get("breached") == "true" else None,
                created_from=date.fromisoformat(params["created_from"])
                if "created_from" in params
                else None,
            )
            sort = listing.Sort(params.get("sort", "next_deadline"))
            print(f"\n-- {name}")  # noqa: T201
            for stmt in listing.statements(filters, sort=sort, limit=50):
                sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
                plan = conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}"))
                for (line,) in plan:
                    print(f"   {line}")  # noqa: T201
    engine.dispose()


# --------------------------------------------------------------------------- the server


def start_api(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SENDMED_DATABASE_URL": url,
        "SENDMED_API_PORT": str(port),
        # Listing needs no Temporal: point the (lazy) client at a closed port.
        "SENDMED_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    command = [*api_argv(port), "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("the API did not start within 30 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--referrals", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per scenario")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--explain", action="store_true", help="print each query plan")
    args = parser.parse_args()
    url: str = args.database_url
    today = datetime.now(UTC).date()

    if not args.reuse:
        recreate_database(url)
    migrate.upgrade(url)
    if not args.reuse:
        took = seed(url, args.referrals, today)
        print(f"seeded {args.referrals:,} referrals in {took:.1f} s")  # noqa: T201
    if args.explain:
        explain(url, today)

    headers = {"Authorization": f"Bearer {api_key(url)}"}
    port = free_port()
    server = start_api(url, port)
    results: list[tuple[str, list[float], int]] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=headers) as http:
            for name, params, page in scenarios(today):
                cursor = cursor_for(http, params, page)
                query = {**params, **({"cursor": cursor} if cursor else {})}
                samples: list[float] = []
                items = 0
                for i in range(args.warmup + args.requests):
                    started = time.perf_counter()
                    response = http.get("/v1/referrals", params=query)
                    elapsed = (time.perf_counter() - started) * 1000
                    response.raise_for_status()
                    if i >= args.warmup:
                        samples.append(elapsed)
                        items = len(response.json()["items"])
                results.append((name, samples, items))
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(  # noqa: T201
        f"\n{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
        f"{args.referrals:,} referrals · {args.requests} timed requests per scenario"
    )
    print("\n| scenario | rows | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|")  # noqa: T201
    every: list[float] = []
    for name, samples, items in results:
        every += samples
        print(  # noqa: T201
            f"| {name} | {items} | {statistics.median(samples):.1f} | "
            f"{percentile(samples, 99):.1f} | {max(samples):.1f} |"
        )
    print(  # noqa: T201
        f"| **all scenarios** | | **{statistics.median(every):.1f}** | "
        f"**{percentile(every, 99):.1f}** | {max(every):.1f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
