"""A year of England on one machine: thousands of Mediation referrals driven to a certificate
through the REST API, with real workflows, activities, PostgreSQL, email and webhooks.

England sees about 15,000 SEND mediation cases a year. Each referral here is created and
driven through ``POST /v1/referrals…`` like a back office would, on the whole service as
``make run`` runs it (dev server with the WAL pragmas, one API), scaled to two worker
processes on the task queue (``--workers``: a Python worker uses one core), with the read
model in PostgreSQL, every email sent over SMTP to a local sink (``aiosmtpd``'s ``Sink``) and
every webhook to a local receiver (one subscription to every event type). Two paths, with
time compressed by backdated facts (``on`` dates), not by a clock:

- **declined** (by default 70 %): create → ``information-session`` → ``decline-mediation``:
  the declined-mediation certificate is issued, rendered, stored, emailed, and the case closes;
- **deemed** (30 %): created as received 40 days ago → ``action`` → ``request-mediation`` on a
  date 31 days ago: no meeting within 30 days, so the workflow issues the deemed certificate
  at once (the command's answer carries it) → ``withdraw`` closes the case.

A referral counts when its workflow has completed (every projection, document and delivery
done). Reports throughput, CPU and peak memory (``VmHWM``) of each process, history events per
referral, and the time England's year would take at that rate.

    .venv/bin/python bench/year_of_england.py                 # 2,000 referrals
    .venv/bin/python bench/year_of_england.py --referrals 100 --no-doc      # a quick check

A measurement, not a test. Results go in docs/PERFORMANCE.md ("A year of England").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.api.enums.v1 import TimeoutType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import baseline  # noqa: E402
from bench.harness import (  # noqa: E402
    EAGER_HELP,
    PG_BASE,
    CommandFailed,
    RestDriver,
    Stack,
    bench_database,
    count_rows,
    cpu_seconds,
    database_size,
    eager_env,
    eager_note,
    load_average,
    mediation_body,
    new_api_key,
    postgres_cpu_seconds,
    proc_status,
    provenance,
    say,
    stop_on_sigterm,
    today,
    wait_closed,
    write_section,
)
from models.messages import workflow_id  # noqa: E402

ENGLAND_PER_YEAR = 15_000


@dataclass
class Tally:
    done: dict[str, int] = field(default_factory=lambda: {"declined": 0, "deemed": 0})
    certificates: dict[str, int] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=lambda: {"declined": [], "deemed": []})
    failures: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


async def declined(rest: RestDriver, stack: Stack, n: int, tally: Tally) -> None:
    referral_id = await rest.create(mediation_body(n))
    await rest.command(referral_id, "information-session")
    answer = await rest.command(referral_id, "decline-mediation")
    await wait_closed(stack.temporal, referral_id)
    finish(tally, "declined", referral_id, answer)


async def deemed(rest: RestDriver, stack: Stack, n: int, tally: Tally) -> None:
    day = today()
    received = day - timedelta(days=40)
    body = mediation_body(n, received_on=received, letter_date=received - timedelta(days=5))
    referral_id = await rest.create(body)
    await rest.command(referral_id, "action", {"on": (received + timedelta(days=1)).isoformat()})
    answer = await rest.command(
        referral_id, "request-mediation", {"on": (day - timedelta(days=31)).isoformat()}
    )
    await rest.command(referral_id, "withdraw", {"reason": "Family going to the Tribunal"})
    await wait_closed(stack.temporal, referral_id)
    finish(tally, "deemed", referral_id, answer)


def finish(tally: Tally, path: str, referral_id: str, answer: dict[str, object]) -> None:
    certificates = answer.get("certificates")
    kinds = (
        [c["kind"] for c in certificates if isinstance(c, dict)]
        if isinstance(certificates, list)
        else []
    )
    for kind in kinds or ["none"]:
        tally.certificates[kind] = tally.certificates.get(kind, 0) + 1
    tally.done[path] += 1
    tally.ids[path].append(referral_id)


@dataclass
class Sampler:
    """Resident memory and CPU of every process, every second."""

    stack: Stack
    peak_rss: dict[str, int] = field(default_factory=dict)
    timeline: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        started = time.monotonic()
        while not stop.is_set():
            rss = {name: proc_status(pid)["VmRSS"] for name, pid in self.stack.pids().items()}
            for name, value in rss.items():
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), value)
            self.timeline.append((time.monotonic() - started, rss))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)


@dataclass
class Retries:
    """Activity attempts after the first in the sampled histories, and how many followed a
    heartbeat timeout (the attempt's ``last_failure``)."""

    retried: int = 0
    after_heartbeat_timeout: int = 0


async def history_stats(
    stack: Stack, ids: list[str], retries: Retries
) -> tuple[list[int], list[int]]:
    events: list[int] = []
    sizes: list[int] = []
    for referral_id in ids:
        history = await stack.temporal.get_workflow_handle(workflow_id(referral_id)).fetch_history()
        events.append(len(history.events))
        sizes.append(sum(e.ByteSize() for e in history.events))
        for event in history.events:
            if not event.HasField("activity_task_started_event_attributes"):
                continue
            started = event.activity_task_started_event_attributes
            if started.attempt > 1:
                retries.retried += 1
                timeout = started.last_failure.timeout_failure_info.timeout_type
                if timeout == TimeoutType.TIMEOUT_TYPE_HEARTBEAT:
                    retries.after_heartbeat_timeout += 1
    return events, sizes


async def main_async(args: argparse.Namespace) -> int:
    if args.baseline:
        return await baseline.compare(
            args,
            key="year_of_england",
            title="A year of England",
            run_round=lambda tree, _i: one_run(args, tree),
            higher_is_better={"referrals/s"},
            settings=f"Each round: {args.referrals} referrals ({args.deemed_share:.0%} deemed), "
            f"{args.concurrency} in flight, {args.workers} worker process(es), "
            f"{eager_note(args.eager_activities)}, "
            f"{'no webhooks' if args.no_webhooks else 'webhooks to a local receiver'}; history "
            f"figures are means over up to {args.histories} fetched histories per path.",
        )
    body, _, failures = await measure(args, None)
    say("\n" + body)
    if failures:
        say("\nfailures:\n" + "\n".join(failures[:20]))
    if not args.no_doc:
        write_section("year_of_england", "A year of England", body)
    return 0 if not failures else 1


async def one_run(args: argparse.Namespace, tree: baseline.Tree) -> dict[str, float]:
    """One round of a --baseline comparison: the run on a fresh stack of ``tree``."""
    body, figures, failures = await measure(args, tree)
    say(body)
    if failures:
        raise RuntimeError(f"{len(failures)} referrals failed:\n" + "\n".join(failures[:20]))
    return figures


async def measure(
    args: argparse.Namespace, tree: baseline.Tree | None
) -> tuple[str, dict[str, float], list[str]]:
    """The run on a fresh stack (of ``tree``'s worker and API, if given): the report, the
    round's figures for a --baseline table, the failures."""
    started_at = datetime.now(UTC)
    load_at_start = load_average()
    rng = random.Random(2026)
    paths = [
        "deemed" if rng.random() < args.deemed_share else "declined" for _ in range(args.referrals)
    ]
    tally = Tally()
    root = tree.root if tree else None
    with bench_database(args.database_url, "sendmed_bench_year", root=root) as url:
        async with baseline.stack_of(
            tree,
            url,
            webhooks=not args.no_webhooks,
            workers=args.workers,
            worker_env=eager_env(args.eager_activities),
        ) as stack:
            token = await new_api_key(url, ["referrals:read", "referrals:write", "webhooks:manage"])
            rest = RestDriver(stack.base_url, token)
            if not args.no_webhooks:
                response = await rest.http.post(
                    "/v1/webhook-subscriptions",
                    json={"url": stack.hook_url, "description": "bench back office"},
                )
                assert response.status_code == 201, response.text
            say(
                f"stack up (logs in {stack.folder}); {args.referrals} referrals, "
                f"{args.concurrency} in flight …"
            )
            pids = stack.pids()
            cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
            postgres0 = postgres_cpu_seconds()
            process0 = time.process_time()
            sampler = Sampler(stack)
            stop = asyncio.Event()
            sampling = asyncio.create_task(sampler.run(stop))
            queue = iter(enumerate(paths, start=1))
            deadline = time.monotonic() + args.max_minutes * 60
            started = time.perf_counter()

            async def client() -> None:
                for n, path in queue:
                    if time.monotonic() > deadline:
                        return
                    began = time.perf_counter()
                    try:
                        if path == "declined":
                            await declined(rest, stack, n, tally)
                        else:
                            await deemed(rest, stack, n, tally)
                    except CommandFailed as exc:
                        tally.failures.append(f"{path} #{n}: {exc}")
                        say(f"  failed: {path} #{n}: {exc}")
                    tally.seconds.append(time.perf_counter() - began)

            async def progress() -> None:
                while True:
                    await asyncio.sleep(15)
                    done = sum(tally.done.values())
                    elapsed = time.perf_counter() - started
                    rss = sampler.timeline[-1][1] if sampler.timeline else {}
                    say(
                        f"  {elapsed:5.0f} s: {done:5d} done ({done / elapsed:.2f}/s); RSS MB "
                        + ", ".join(f"{k} {v / 1024:.0f}" for k, v in rss.items())
                    )

            reporter = asyncio.create_task(progress())
            await asyncio.gather(*(client() for _ in range(args.concurrency)))
            elapsed = time.perf_counter() - started
            reporter.cancel()
            stop.set()
            await sampling
            cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
            cpu["bench (driver)"] = time.process_time() - process0
            cpu["postgresql"] = postgres_cpu_seconds() - postgres0
            hwm = {name: proc_status(pid)["VmHWM"] for name, pid in pids.items()}
            stack.check()
            sample = rng.sample(
                tally.ids["declined"], min(args.histories, len(tally.ids["declined"]))
            )
            sample_deemed = rng.sample(
                tally.ids["deemed"], min(args.histories, len(tally.ids["deemed"]))
            )
            retries = Retries()
            declined_events, declined_bytes = await history_stats(stack, sample, retries)
            deemed_events, deemed_bytes = await history_stats(stack, sample_deemed, retries)
            store = sum(f.stat().st_size for f in stack.folder.glob("temporal.db*") if f.is_file())
            await rest.close()
        emails = count_rows(
            url, "SELECT count(*) FROM delivery WHERE channel = 'email' AND status = 'sent'"
        )
        hooks = count_rows(
            url, "SELECT count(*) FROM delivery WHERE channel = 'webhook' AND status = 'sent'"
        )
        failed = count_rows(url, "SELECT count(*) FROM delivery WHERE status NOT IN ('sent')")
        documents = count_rows(url, "SELECT count(*) FROM document")
        closed = count_rows(url, "SELECT count(*) FROM referral WHERE status = 'closed'")
        db_bytes = database_size(url)

    done = sum(tally.done.values())
    rate = done / elapsed
    year_minutes = ENGLAND_PER_YEAR / rate / 60
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(tally.certificates.items()))
    median_s, max_s = statistics.median(tally.seconds), max(tally.seconds)
    declined_kb = statistics.mean(declined_bytes) / 1024
    deemed_kb = statistics.mean(deemed_bytes) / 1024
    lines = [
        provenance(args.database_url, started_at, load_at_start),
        f"**{done:,} referrals driven to a certificate in {elapsed / 60:.1f} min: {rate:.2f} per "
        f"second, so England's ~{ENGLAND_PER_YEAR:,} a year would take {year_minutes:.0f} min "
        f"(target under 60 min: {'met' if year_minutes < 60 else 'NOT met'}).**",
        "",
        f"- Paths: {tally.done['declined']:,} declined (certificate, closed), "
        f"{tally.done['deemed']:,} deemed (request backdated 31 days, deemed certificate at once, "
        f"then withdrawn); certificates: {kinds}; "
        f"{len(tally.failures)} failures.",
        f"- Read model (PostgreSQL): {closed:,} referrals closed, {documents:,} documents stored, "
        f"{emails:,} emails sent (SMTP to a local `aiosmtpd` sink), {hooks:,} webhooks delivered "
        f"(to a local receiver), {failed:,} deliveries not sent; database {db_bytes / 1e6:.0f} MB.",
        f"- Each referral, start to workflow completed: p50 {median_s:.1f} s, "
        f"max {max_s:.1f} s, with {args.concurrency} in flight.",
        "- History per referral (fetched, a random sample of "
        f"{len(declined_events)} + {len(deemed_events)}): declined "
        f"{statistics.mean(declined_events):.0f} events ({declined_kb:.0f} KB "
        f"encrypted), deemed {statistics.mean(deemed_events):.0f} events "
        f"({deemed_kb:.0f} KB); dev server store "
        f"{store / 1e6:.0f} MB ({store / done / 1024:.0f} KB per referral); activity "
        f"attempts retried in those histories: {retries.retried} "
        f"({retries.after_heartbeat_timeout} after a heartbeat timeout).",
        "",
        "| process | CPU s | CPU ms per referral | share of 2 cores | peak RSS (VmHWM) MB |",
        "|---|---:|---:|---:|---:|",
    ]
    workers = sorted(n for n in cpu if n.startswith("worker"))
    for name in ("temporal", *workers, "api", "smtp", "webhooks", "bench (driver)", "postgresql"):
        if name not in cpu:
            continue
        peak = hwm.get(name) or sampler.peak_rss.get(name, 0)
        if name == "bench (driver)":
            peak = proc_status_self()
        shown = f"{peak / 1024:.0f}" if name != "postgresql" else "(shared server)"
        lines.append(
            f"| {name} | {cpu[name]:.0f} | {1000 * cpu[name] / done:.0f} | "
            f"{100 * cpu[name] / elapsed / 2:.0f} % | {shown} |"
        )
    total_cpu = sum(cpu.values())
    lines += [
        f"| **all** | {total_cpu:.0f} | {1000 * total_cpu / done:.0f} | "
        f"{100 * total_cpu / elapsed / 2:.0f} % | |",
        "",
        f"Settings: {args.workers} worker process(es) on the task queue (`python worker.py`, "
        f"defaults, {eager_note(args.eager_activities)}), one API process, "
        f"{args.concurrency} referrals in flight.",
    ]
    figures = {
        "referrals/s": rate,
        "CPU ms per referral, all": 1000 * total_cpu / done,
        **{f"CPU ms per referral, {name}": 1000 * cpu[name] / done for name in cpu},
        "history events, declined": statistics.mean(declined_events),
        "history events, deemed": statistics.mean(deemed_events),
        "history KB, declined": declined_kb,
        "history KB, deemed": deemed_kb,
        "referral p50 s": median_s,
    }
    return "\n".join(lines), figures, tally.failures


def proc_status_self() -> int:
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=PG_BASE, help="PostgreSQL server to use")
    parser.add_argument("--referrals", type=int, default=2000)
    parser.add_argument("--deemed-share", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=24, help="referrals in flight")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes (default 2: one Python process uses one core, this has two)",
    )
    parser.add_argument("--histories", type=int, default=50, help="fetched per path")
    parser.add_argument("--max-minutes", type=float, default=60.0, help="stop starting new ones")
    parser.add_argument("--no-webhooks", action="store_true", help="no webhook subscription")
    parser.add_argument("--eager-activities", action="store_true", help=EAGER_HELP)
    parser.add_argument("--no-doc", action="store_true", help="do not touch PERFORMANCE.md")
    parser.add_argument("--rounds", type=int, help="with --baseline: runs per side (default 3)")
    baseline.add_arguments(parser)
    args = parser.parse_args()
    if args.rounds is not None and not args.baseline:
        parser.error("--rounds goes with --baseline (a run without it is one round)")
    args.rounds = args.rounds or 3
    with stop_on_sigterm():
        return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
