"""Open cases: 10,000 Mediation referrals open at once, each waiting on its 30-day clock,
held by one worker: the worker's resident memory, and how long a cold replay of one case takes.

Each case is created and sent ``request-mediation`` with the raw Temporal client (as the API
drives it: update-with-start, then ``execute_update``), so it ends up in
``arranging_meeting``, asleep on its timer (the next midnight: the live "day N of 30" line).
The worker is ``python worker.py`` with its defaults (``max_cached_workflows`` 1000 unless
``--max-cached`` says otherwise), so it keeps the most recent cases in memory and the rest
only in Temporal. Then:

1. the worker's resident memory (``VmRSS``, ``VmHWM``) with every case open, and the dev
   server's, against the worker's before the first case;
2. a **cold replay** two ways: ``temporalio.worker.Replayer`` in this process on histories
   fetched from the server (the sandboxed workflow, as the worker runs it), and a query
   (``referral``) to cases the worker no longer has in its cache, which it answers by
   replaying the whole history, against the same query to cases it still holds;
3. with ``--refill N`` (default 2000), a **restarted worker** with a cache big enough for every
   case, queried on N cases it has never seen: how fast a worker rebuilds its cache (the
   work every midnight wake of an evicted case costs), and its memory per cached case.

    .venv/bin/python bench/open_cases.py                  # 10,000 cases (about 20-30 min)
    .venv/bin/python bench/open_cases.py --count 300 --refill 100 --no-doc      # quick check

A measurement, not a test. Results go in docs/PERFORMANCE.md ("Open cases").
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.client import WorkflowHistory  # noqa: E402
from temporalio.worker import Replayer  # noqa: E402

from bench.harness import (  # noqa: E402
    PG_BASE,
    RawDriver,
    Stack,
    bench_database,
    count_rows,
    cpu_seconds,
    herts_policy,
    load_average,
    mediation_body,
    percentile,
    proc_status,
    provenance,
    running_stack,
    say,
    stop_on_sigterm,
    write_section,
)
from models.messages import workflow_id  # noqa: E402
from worker import WORKFLOWS, sandbox_runner  # noqa: E402
from workflows.client import data_converter  # noqa: E402
from workflows.referral import ReferralWorkflow  # noqa: E402


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


async def open_all(stack: Stack, raw: RawDriver, count: int, concurrency: int) -> list[str]:
    ids: list[str] = []
    serials = iter(range(1, count + 1))
    started = time.perf_counter()
    worker = stack.pids()["worker"]

    async def opener() -> None:
        for n in serials:
            referral_id = await raw.create(mediation_body(n))
            await raw.command(referral_id, "request-mediation")
            ids.append(referral_id)

    async def progress() -> None:
        while True:
            await asyncio.sleep(30)
            elapsed = time.perf_counter() - started
            say(
                f"  {elapsed:5.0f} s: {len(ids):6d} open ({len(ids) / elapsed:.1f}/s); worker "
                f"RSS {mb(proc_status(worker)['VmRSS'])}, dev server "
                f"{mb(proc_status(stack.pids()['temporal'])['VmRSS'])}"
            )

    reporter = asyncio.create_task(progress())
    try:
        await asyncio.gather(*(opener() for _ in range(concurrency)))
    finally:
        reporter.cancel()
    return ids


async def settle(pid: int, quiet_cpu: float = 0.05, within: float = 300.0) -> float:
    """Wait until the process uses under ``quiet_cpu`` of a core for 5 s (its backlog done)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        before = cpu_seconds(pid)
        await asyncio.sleep(5)
        if (cpu_seconds(pid) - before) / 5 < quiet_cpu:
            break
    return time.monotonic() - started


async def timed_queries(stack: Stack, ids: list[str]) -> list[float]:
    samples = []
    for referral_id in ids:
        handle = stack.temporal.get_workflow_handle(workflow_id(referral_id))
        began = time.perf_counter()
        await handle.query(ReferralWorkflow.referral)
        samples.append(time.perf_counter() - began)
    return samples


async def replays(stack: Stack, ids: list[str]) -> tuple[list[float], list[int]]:
    """Replayer in this process: seconds per history (the first loads the sandbox)."""
    histories: list[WorkflowHistory] = []
    for referral_id in ids:
        handle = stack.temporal.get_workflow_handle(workflow_id(referral_id))
        histories.append(await handle.fetch_history())
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=data_converter(stack.settings().payload_codec()),
        workflow_runner=sandbox_runner(),
    )
    seconds = []
    for history in histories:
        began = time.perf_counter()
        await replayer.replay_workflow(history)
        seconds.append(time.perf_counter() - began)
    return seconds, [len(h.events) for h in histories]


def ms(samples: list[float], p: float) -> str:
    return f"{1000 * percentile(samples, p):.0f}"


async def main_async(args: argparse.Namespace) -> int:
    started_at = datetime.now(UTC)
    load_at_start = load_average()
    rng = random.Random(10_000)
    env = {"SENDMED_WORKER_MAX_CACHED_WORKFLOWS": str(args.max_cached)}
    with bench_database(args.database_url, "sendmed_bench_open") as url:
        async with running_stack(url, worker_env=env) as stack:
            raw = RawDriver(
                stack.temporal, stack.task_queue, await herts_policy(url, stack.settings())
            )
            worker_pid = stack.pids()["worker"]
            base = proc_status(worker_pid)
            say(
                f"stack up (logs in {stack.folder}); worker RSS {mb(base['VmRSS'])}; opening "
                f"{args.count:,} cases, {args.concurrency} at a time …"
            )
            began = time.perf_counter()
            ids = await open_all(stack, raw, args.count, args.concurrency)
            opening = time.perf_counter() - began
            settled = await settle(worker_pid)
            stack.check()
            held = proc_status(worker_pid)
            server = proc_status(stack.pids()["temporal"])
            open_rows = count_rows(
                url, "SELECT count(*) FROM referral WHERE status = 'arranging_meeting'"
            )
            store = sum(f.stat().st_size for f in stack.folder.glob("temporal.db*") if f.is_file())
            say(
                f"{len(ids):,} open in {opening:.0f} s ({len(ids) / opening:.1f}/s; settled "
                f"{settled:.0f} s later); worker RSS {mb(held['VmRSS'])} (peak "
                f"{mb(held['VmHWM'])}); dev server RSS {mb(server['VmRSS'])}"
            )

            # Cold and warm queries on the running worker: the oldest cases were evicted
            # (least recently used) once more than max_cached were open; the newest are held.
            k = min(args.queries, len(ids) // 4)
            evicted = rng.sample(ids[: max(k, len(ids) - args.max_cached - 100)], k)
            cached = rng.sample(ids[-min(len(ids), args.max_cached // 2) :], k)
            cached_ms = await timed_queries(stack, cached)
            cold_ms = await timed_queries(stack, evicted)
            again_ms = await timed_queries(stack, evicted)
            say(
                f"query p50: held {ms(cached_ms, 50)} ms, evicted (cold replay) "
                f"{ms(cold_ms, 50)} ms, the same again {ms(again_ms, 50)} ms"
            )
            replay_s, replay_events = await replays(stack, rng.sample(ids, k + 1))
            say(
                f"Replayer: first {1000 * replay_s[0]:.0f} ms (loads the sandbox), then p50 "
                f"{ms(replay_s[1:], 50)} ms for {statistics.mean(replay_events):.0f} events"
            )
            after_queries = proc_status(worker_pid)

            refill: dict[str, float] = {}
            if args.refill:
                n = min(args.refill, len(ids))
                fresh = await stack.start_worker(
                    {"SENDMED_WORKER_MAX_CACHED_WORKFLOWS": str(len(ids) + 100)}
                )
                fresh_base = proc_status(fresh.pid)
                cpu0 = cpu_seconds(fresh.pid)
                touched = rng.sample(ids, n)
                sem = asyncio.Semaphore(args.concurrency)
                latencies: list[float] = []

                async def touch(referral_id: str) -> None:
                    async with sem:
                        latencies.extend(await timed_queries(stack, [referral_id]))

                began = time.perf_counter()
                await asyncio.gather(*(touch(r) for r in touched))
                took = time.perf_counter() - began
                filled = proc_status(fresh.pid)
                refill = {
                    "n": n,
                    "seconds": took,
                    "per_second": n / took,
                    "cpu_ms": 1000 * (cpu_seconds(fresh.pid) - cpu0) / n,
                    "p50": 1000 * percentile(latencies, 50),
                    "p99": 1000 * percentile(latencies, 99),
                    "base_kb": fresh_base["VmRSS"],
                    "filled_kb": filled["VmRSS"],
                    "per_case_kb": (filled["VmRSS"] - fresh_base["VmRSS"]) / n,
                }
                say(
                    f"restarted worker: {n:,} cold cases cached in {took:.0f} s "
                    f"({refill['per_second']:.1f}/s, {refill['cpu_ms']:.0f} ms CPU each); RSS "
                    f"{mb(fresh_base['VmRSS'])} -> {mb(filled['VmRSS'])}"
                )
            stack.check()

    per_case = (held["VmRSS"] - base["VmRSS"]) / min(len(ids), args.max_cached)
    lines = [
        provenance(args.database_url, started_at, load_at_start),
        f"**{len(ids):,} referrals open at once** (mediation requested, each asleep on its "
        f"timer; {open_rows:,} in `arranging_meeting` in the read model), opened in "
        f"{opening / 60:.1f} min ({len(ids) / opening:.1f} per second, create + "
        "`request-mediation` with the raw client), held by one worker with "
        f"`max_cached_workflows` {args.max_cached:,}:",
        "",
        f"- **worker resident memory {mb(held['VmRSS'])}** (peak {mb(held['VmHWM'])}; "
        f"{mb(base['VmRSS'])} before the first case): about {per_case:.0f} KB per cached case, "
        f"{min(len(ids), args.max_cached):,} of them in its cache, the rest only in Temporal. "
        f"After the queries below: {mb(after_queries['VmRSS'])}.",
        f"- Temporal dev server: resident {mb(server['VmRSS'])} (peak {mb(server['VmHWM'])}); "
        f"store {store / 1e6:.0f} MB ({store / len(ids) / 1024:.0f} KB per open case).",
        f"- **Cold replay of one case** ({statistics.mean(replay_events):.0f} history events): "
        f"`Replayer` p50 **{ms(replay_s[1:], 50)} ms** (p99 {ms(replay_s[1:], 99)} ms, "
        f"{len(replay_s) - 1} histories; the very first {1000 * replay_s[0]:.0f} ms, loading the "
        f"sandbox); a query to a case evicted from the worker's cache p50 **{ms(cold_ms, 50)} ms** "
        f"(p99 {ms(cold_ms, 99)} ms, {len(cold_ms)} cases) against {ms(cached_ms, 50)} ms "
        f"(p99 {ms(cached_ms, 99)} ms) for one it holds, and {ms(again_ms, 50)} ms for the same "
        "evicted cases queried again.",
    ]
    if refill:
        lines.append(
            f"- **A restarted worker** (cache big enough for every case) asked about "
            f"{int(refill['n']):,} cases it had never seen, {args.concurrency} at a time: "
            f"{refill['per_second']:.1f} cold replays per second ({refill['cpu_ms']:.0f} ms of its "
            f"CPU each; query p50 {refill['p50']:.0f} ms, p99 {refill['p99']:.0f} ms); resident "
            f"memory {mb(int(refill['base_kb']))} → {mb(int(refill['filled_kb']))}, "
            f"**{refill['per_case_kb']:.0f} KB per cached case**, so "
            f"{len(ids):,} cached would need about "
            f"{(refill['base_kb'] + refill['per_case_kb'] * len(ids)) / 1024 / 1024:.1f} GB, and "
            f"re-reading all {len(ids):,} after a restart about "
            f"{len(ids) / refill['per_second'] / 60:.0f} min."
        )
    body = "\n".join(lines)
    say("\n" + body)
    if not args.no_doc:
        write_section("open_cases", "Open cases", body)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=PG_BASE, help="PostgreSQL server to use")
    parser.add_argument("--count", type=int, default=10_000, help="cases to open")
    parser.add_argument("--concurrency", type=int, default=16, help="starts in flight")
    parser.add_argument("--max-cached", type=int, default=1000, help="the worker's cache")
    parser.add_argument("--queries", type=int, default=50, help="cold and warm queries")
    parser.add_argument("--refill", type=int, default=2000, help="cases a new worker reads")
    parser.add_argument("--no-doc", action="store_true", help="do not touch PERFORMANCE.md")
    args = parser.parse_args()
    with stop_on_sigterm():
        return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
