"""REST overhead: full referral lifecycles per second through the API against the raw
Temporal client, side by side in one run.

One lifecycle: create a Mediation referral, then three commands (``action``,
``information-session``, ``decline-mediation``), then wait until the workflow has completed,
i.e. its projections are written and the declined-mediation certificate is rendered (PDF),
stored and emailed (SMTP to a local sink). Two ways of driving it, against the same dev
server, worker, database and task queue:

- **REST**: real HTTP to the API (uvicorn, as ``make run`` starts it) with an API key;
- **raw**: the Temporal client in this process, exactly as the API drives the workflow
  (update-with-start of ``created``, then ``execute_update`` per command, same codec).

Both wait for completion the same way (the workflow's result, from this process). Each round
runs ``--lifecycles`` lifecycles per mode with ``--concurrency`` in flight; rounds alternate
which mode goes first, and the ratio compared is of the medians.

    .venv/bin/python bench/rest_vs_raw.py                     # 5 rounds x 60 lifecycles
    .venv/bin/python bench/rest_vs_raw.py --rounds 1 --lifecycles 10 --no-doc   # a quick check

A measurement, not a test. Results go in docs/PERFORMANCE.md ("REST overhead").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import baseline  # noqa: E402
from bench.harness import (  # noqa: E402
    EAGER_HELP,
    PG_BASE,
    RawDriver,
    RestDriver,
    Stack,
    bench_database,
    cpu_seconds,
    eager_env,
    eager_note,
    herts_policy,
    load_average,
    mediation_body,
    new_api_key,
    percentile,
    provenance,
    say,
    stop_on_sigterm,
    wait_closed,
    write_section,
)

COMMANDS = ("action", "information-session", "decline-mediation")
PROCESSES = ("api", "worker", "temporal", "smtp")


@dataclass
class Round:
    mode: str
    lifecycles: int
    seconds: float
    latencies: list[float]
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the round

    @property
    def per_second(self) -> float:
        return self.lifecycles / self.seconds


Driver = RestDriver | RawDriver


async def lifecycle(driver: Driver, stack: Stack, n: int) -> float:
    started = time.perf_counter()
    referral_id = await driver.create(mediation_body(n))
    for command in COMMANDS:
        await driver.command(referral_id, command)
    await wait_closed(stack.temporal, referral_id)
    return time.perf_counter() - started


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


async def run_round(
    mode: str, driver: Driver, stack: Stack, count: int, concurrency: int, first: int
) -> Round:
    pids = stack.pids()
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    before["bench (driver)"] = time.process_time()
    busy0, total0 = machine_busy()
    latencies: list[float] = []
    issued = 0

    async def client() -> None:
        nonlocal issued
        while issued < count:
            issued += 1
            latencies.append(await lifecycle(driver, stack, first + issued))

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(min(concurrency, count))))
    seconds = time.perf_counter() - started
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    cpu["bench (driver)"] = time.process_time() - before["bench (driver)"]
    busy1, total1 = machine_busy()
    cpu["machine busy %"] = 100 * (busy1 - busy0) / max(total1 - total0, 1)
    stack.check()
    return Round(mode, count, seconds, latencies, cpu)


def report(rounds: list[Round], args: argparse.Namespace, head: str) -> str:
    rest = [r for r in rounds if r.mode == "REST"]
    raw = [r for r in rounds if r.mode == "raw"]
    rest_median, raw_median = (
        statistics.median([r.per_second for r in rest]),
        statistics.median([r.per_second for r in raw]),
    )
    ratio = rest_median / raw_median
    pair_ratios = [a.per_second / b.per_second for a, b in zip(rest, raw, strict=True)]
    lines = [
        head,
        f"**REST {rest_median:.2f} lifecycles/s against raw {raw_median:.2f}: "
        f"{ratio:.2f}× (target ≥ 0.8×: {'met' if ratio >= 0.8 else 'NOT met'})**; "
        f"per-round ratios {', '.join(f'{r:.2f}' for r in pair_ratios)} "
        f"(median {statistics.median(pair_ratios):.2f}).",
        "",
        "| round | mode | lifecycles/s | lifecycle p50 s | p95 s | max s |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(rounds):
        lines.append(
            f"| {i // 2 + 1} | {r.mode} | {r.per_second:.2f} | "
            f"{percentile(r.latencies, 50):.2f} | {percentile(r.latencies, 95):.2f} | "
            f"{max(r.latencies):.2f} |"
        )
    lines += [
        f"| **median** | REST | **{rest_median:.2f}** | | | |",
        f"| **median** | raw | **{raw_median:.2f}** | | | |",
        "",
        "CPU milliseconds per lifecycle, by process (sum over the rounds of each mode), and the "
        "machine's busy share (2 cores = 100 %):",
        "",
        "| mode | " + " | ".join((*PROCESSES, "bench (driver)")) + " | total | machine busy |",
        "|---|" + "---:|" * (len(PROCESSES) + 3),
    ]
    for mode, group in (("REST", rest), ("raw", raw)):
        n = sum(r.lifecycles for r in group)
        per = {
            name: 1000 * sum(r.cpu.get(name, 0.0) for r in group) / n
            for name in (*PROCESSES, "bench (driver)")
        }
        busy = statistics.median([r.cpu["machine busy %"] for r in group])
        lines.append(
            f"| {mode} | "
            + " | ".join(f"{per[name]:.0f}" for name in (*PROCESSES, "bench (driver)"))
            + f" | {sum(per.values()):.0f} | {busy:.0f} % |"
        )
    lines.append("")
    lines.append(settings_note(args))
    return "\n".join(lines)


def settings_note(args: argparse.Namespace) -> str:
    return (
        f"Settings: {args.rounds} rounds × {args.lifecycles} lifecycles per mode, "
        f"{args.concurrency} in flight, {args.warmup} warm-up lifecycles per mode first; "
        "PostgreSQL read model; the worker and API with their defaults "
        f"(max_cached_workflows 1000, pollers: 5 each{', autoscaling' if args.autoscale else ''}"
        f"), {eager_note(args.eager_activities)}."
    )


def round_figures(rounds: list[Round]) -> dict[str, float]:
    """A --baseline round's figures: one REST and one raw measurement on one stack."""
    by_mode = {r.mode: r for r in rounds}
    rest, raw = by_mode["REST"], by_mode["raw"]
    figures = {
        "REST lifecycles/s": rest.per_second,
        "raw lifecycles/s": raw.per_second,
        "REST/raw": rest.per_second / raw.per_second,
    }
    for mode, r in (("REST", rest), ("raw", raw)):
        per = {
            name: 1000 * r.cpu.get(name, 0.0) / r.lifecycles
            for name in (*PROCESSES, "bench (driver)")
        }
        figures[f"{mode} CPU ms per lifecycle, all"] = sum(per.values())
        if mode == "REST":
            figures |= {f"REST CPU ms per lifecycle, {k}": v for k, v in per.items()}
        figures[f"{mode} machine busy %"] = r.cpu["machine busy %"]
    return figures


async def main_async(args: argparse.Namespace) -> int:
    if args.baseline:

        async def one_round(tree: baseline.Tree, i: int) -> dict[str, float]:
            # one REST and one raw measurement, in the order round i takes without --baseline
            return round_figures(await measure(args, tree, rounds=1, first_round=i - 1))

        return await baseline.compare(
            args,
            key="rest_vs_raw",
            title="REST overhead",
            run_round=one_round,
            higher_is_better={"REST lifecycles/s", "raw lifecycles/s", "REST/raw"},
            settings="Each round: one REST and one raw measurement of "
            f"{args.lifecycles} lifecycles (REST first in odd rounds), after {args.warmup} "
            f"warm-up lifecycles per mode. {settings_note(args)}",
        )
    started = datetime.now(UTC)
    load_at_start = load_average()
    rounds = await measure(args, None, rounds=args.rounds, first_round=0)
    body = report(rounds, args, provenance(args.database_url, started, load_at_start))
    say("\n" + body)
    if not args.no_doc:
        write_section("rest_vs_raw", "REST overhead", body)
    return 0


async def measure(
    args: argparse.Namespace, tree: baseline.Tree | None, *, rounds: int, first_round: int
) -> list[Round]:
    """``rounds`` REST and raw rounds on one fresh stack (of ``tree``'s worker and API, if
    given), after the warm-up; round ``first_round`` decides which mode goes first."""
    worker_env = {"SENDMED_WORKER_POLLER_AUTOSCALING": "true"} if args.autoscale else {}
    worker_env |= eager_env(args.eager_activities)
    root = tree.root if tree else None
    with bench_database(args.database_url, "sendmed_bench_rest", root=root) as url:
        async with baseline.stack_of(
            tree,
            url,
            worker_env=worker_env,
        ) as stack:
            token = await new_api_key(url, ["referrals:read", "referrals:write"])
            rest = RestDriver(stack.base_url, token)
            raw = RawDriver(
                stack.temporal, stack.task_queue, await herts_policy(url, stack.settings())
            )
            drivers: dict[str, Driver] = {"REST": rest, "raw": raw}
            serial = 0
            say(f"stack up (logs in {stack.folder}); warming up …")
            for mode in ("REST", "raw"):
                await run_round(mode, drivers[mode], stack, args.warmup, args.concurrency, serial)
                serial += args.warmup
            done: list[Round] = []
            deadline = time.monotonic() + args.max_minutes * 60
            for i in range(first_round, first_round + rounds):
                order = ("REST", "raw") if i % 2 == 0 else ("raw", "REST")
                for mode in order:
                    r = await run_round(
                        mode, drivers[mode], stack, args.lifecycles, args.concurrency, serial
                    )
                    serial += args.lifecycles
                    done.append(r)
                    say(
                        f"round {i + 1} {mode:>4}: {r.per_second:6.2f} lifecycles/s "
                        f"(p50 {percentile(r.latencies, 50):.2f} s; CPU s: "
                        + ", ".join(f"{k} {v:.1f}" for k, v in r.cpu.items() if "%" not in k)
                        + f"; machine {r.cpu['machine busy %']:.0f} % busy)"
                    )
                if time.monotonic() > deadline:
                    say(f"stopping after round {i + 1}: --max-minutes {args.max_minutes} reached")
                    break
            await rest.close()
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=PG_BASE, help="PostgreSQL server to use")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lifecycles", type=int, default=60, help="per mode and round")
    parser.add_argument("--concurrency", type=int, default=10, help="lifecycles in flight")
    parser.add_argument("--warmup", type=int, default=20, help="lifecycles per mode first")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="stop after a round")
    parser.add_argument("--autoscale", action="store_true", help="poller autoscaling on")
    parser.add_argument("--eager-activities", action="store_true", help=EAGER_HELP)
    parser.add_argument("--no-doc", action="store_true", help="do not touch PERFORMANCE.md")
    baseline.add_arguments(parser)
    args = parser.parse_args()
    with stop_on_sigterm():
        return asyncio.run(main_async(args))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
