"""CPU of the worker's activity-side building blocks, one at a time (issue 17).

What ``year_of_england.py`` cannot say on its own: how much CPU one delivery through the
ledger, one PDF render or one payload through the codec costs, measured in this process
(``time.process_time``), best of five rounds, so a change to one of them can be judged
without the whole stack's noise. PostgreSQL for the ledger (a fresh database, dropped after)::

    .venv/bin/python bench/worker_micro.py                 # all three
    .venv/bin/python bench/worker_micro.py --only ledger --count 500

- ``ledger``: a delivery inserted, claimed, "sent" (a no-op send) and settled, then a retry
  that finds it settled: ``Ledger.send_once`` as the dispatcher calls it.
- ``pdf``: the family's certificate of a declined referral.
- ``codec``: a referral-sized payload and a small one, encrypted and decrypted.

A measurement, not a test; nothing is written to docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.api.common.v1 import Payload  # noqa: E402

from activities.dispatch import Ledger  # noqa: E402
from bench.harness import PG_BASE, bench_database, say  # noqa: E402
from models.adapters.codec import EncryptionCodec, Keyring  # noqa: E402
from models.adapters.pdf import Issuer, Letterhead, render  # noqa: E402
from models.domain.referral import Referral  # noqa: E402
from models.store.db import make_engine, make_sessionmaker  # noqa: E402
from models.store.document_tables import PENDING  # noqa: E402
from tests.documents import referrals  # noqa: E402

ROUNDS = 5


def best_ms(label: str, count: int, one: Callable[[], object]) -> None:
    per_round = max(count // ROUNDS, 1)
    times = []
    for _ in range(ROUNDS):
        began = time.process_time()
        for _ in range(per_round):
            one()
        times.append((time.process_time() - began) * 1000 / per_round)
    times.sort()
    say(f"{label}: {times[0]:.3f} ms CPU (median {times[ROUNDS // 2]:.3f}), {count} runs")


def declined() -> Referral:
    return referrals.declined()


def bench_pdf(count: int) -> None:
    referral = declined()
    number = referral.certificates[0].number
    letterhead = Letterhead(
        Issuer(
            name="Provider Ltd",
            phone="0123 456 7890",
            email="mediation@provider.example.org",
            website="https://provider.example.org",
            address="1 High Street, Hertford",
        ),
        "Hertfordshire County Council",
    )
    size = len(render("certificate", referral, number, letterhead).pdf)
    best_ms(
        f"pdf: one certificate ({size} bytes)",
        count,
        lambda: render("certificate", referral, number, letterhead),
    )


def bench_codec(count: int) -> None:
    codec = EncryptionCodec(Keyring.development())
    snapshot = json.dumps(declined().model_dump(mode="json")).encode()
    for name, data in (("referral", snapshot), ("small", b'{"referral_id":"x","key":"k:1"}')):
        payload = Payload(metadata={"encoding": b"json/plain"}, data=data)
        sealed = codec.encrypt(payload)

        def seal(p: Payload = payload) -> Payload:
            return codec.encrypt(p)

        def unseal(p: Payload = sealed) -> Payload:
            return codec.decrypt(p)

        best_ms(f"codec: encrypt {name} ({len(data)} B)", count * 10, seal)
        best_ms(f"codec: decrypt {name}", count * 10, unseal)


async def bench_ledger(database_url: str, count: int) -> None:
    with bench_database(database_url, "sendmed_bench_micro") as url:
        engine = make_engine(url, pre_ping=False)
        ledger = Ledger(make_sessionmaker(engine), lease=45.0)
        inserts_first = "values" in inspect.signature(Ledger.send_once).parameters

        async def noop(_row: Any) -> None:
            return None

        async def delivery(n: int) -> None:
            now = datetime.now(UTC)
            key = f"bench:{n}"
            values = {
                "key": key,
                "referral_id": "bench",
                "purpose": "event",
                "recipient": "whsub_bench",
                "channel": "webhook",
                "status": PENDING,
                "attempts": 0,
                "message_id": f"msg_{n}",
                "payload": {"type": "referral.closed", "data": {"n": n}},
                "created_at": now,
                "updated_at": now,
            }
            if inserts_first:
                sent = await ledger.send_once(key, noop, label="bench", values=values)
            else:  # the ledger before it took the row's values (for runs against older refs)
                await ledger.ensure(values)
                sent = await ledger.send_once(key, noop, label="bench")
            again = await ledger.send_once(key, noop, label="bench")
            assert sent.new
            assert sent.row.status == "sent"
            assert not again.new

        for n in range(50):  # warm the pool and the statement caches
            await delivery(-n - 1)
        per_round = max(count // ROUNDS, 1)
        times = []
        for r in range(ROUNDS):
            began = time.process_time()
            for n in range(per_round):
                await delivery(r * per_round + n)
            times.append((time.process_time() - began) * 1000 / per_round)
        times.sort()
        say(
            f"ledger: one delivery sent, then found settled: {times[0]:.3f} ms CPU "
            f"(median {times[ROUNDS // 2]:.3f}), {count} deliveries"
        )
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=PG_BASE, help="PostgreSQL server to use")
    parser.add_argument("--only", choices=("ledger", "pdf", "codec"), action="append")
    parser.add_argument("--count", type=int, default=200, help="runs of each (× 10 for codec)")
    args = parser.parse_args()
    only = set(args.only or ("ledger", "pdf", "codec"))
    if "ledger" in only:
        asyncio.run(bench_ledger(args.database_url, args.count * 2))
    if "pdf" in only:
        bench_pdf(args.count)
    if "codec" in only:
        bench_codec(args.count)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
