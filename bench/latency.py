"""Latency under a steady open-loop load: ``GET /v1/referrals/{id}`` and commands through the
API, beside the raw Temporal client's update-and-confirm round trip, in one run.

Requests are sent on a fixed schedule whatever the answers (open loop), and each latency is
measured from the moment the request was *due*, so a stalled client cannot hide a slow
server (no coordinated omission). Each round has two phases of ``--seconds``, in alternating
order: in both, reads arrive at ``--read-rate`` per second; commands arrive at
``--command-rate`` per second, through the REST API in one phase and with the raw client
(``execute_update``, which returns once the workflow has applied and projected the command)
in the other. The commands are the first three of a Mediation referral (``action``,
``information-session``, ``request-mediation``), each referral taking them in order, so both
phases send the same mix to referrals in the same states; the referrals are created first.

    .venv/bin/python bench/latency.py                  # 3 rounds x 2 phases x 40 s
    .venv/bin/python bench/latency.py --rounds 1 --seconds 10 --no-doc     # a quick check

A measurement, not a test. Results go in docs/PERFORMANCE.md ("Latency").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import baseline  # noqa: E402
from bench.harness import (  # noqa: E402
    EAGER_HELP,
    PG_BASE,
    RawDriver,
    RestDriver,
    bench_database,
    cpu_seconds,
    eager_env,
    eager_note,
    free_port,
    herts_policy,
    load_average,
    mediation_body,
    new_api_key,
    percentile,
    profile_summary,
    provenance,
    say,
    start_profile,
    stop_on_sigterm,
    write_section,
)

STEPS = ("action", "information-session", "request-mediation")


@dataclass
class Phase:
    mode: str
    commands: list[float] = field(default_factory=list)  # seconds, from when each was due
    timeline: list[tuple[float, str, float]] = field(default_factory=list)  # (due, what, s)
    reads: list[float] = field(default_factory=list)
    errors: int = 0
    starved: int = 0  # a command was due but every referral was busy (not sent)
    late_sends: list[float] = field(default_factory=list)  # how late the client sent
    api_cpu: float = 0.0  # CPU seconds the API serving the phase used during it

    @property
    def api_ms_per_request(self) -> float:
        return 1000 * self.api_cpu / max(1, len(self.reads) + len(self.commands))


class Pool:
    """Referrals ready for their next command; one command at a time per referral."""

    def __init__(self, ids: list[str]) -> None:
        self.ready: deque[tuple[str, int]] = deque((rid, 0) for rid in ids)

    def take(self) -> tuple[str, int] | None:
        return self.ready.popleft() if self.ready else None

    def give_back(self, referral_id: str, step: int) -> None:
        if step + 1 < len(STEPS):
            self.ready.append((referral_id, step + 1))


async def open_loop(
    rate: float,
    seconds: float,
    fire: Callable[[float], Coroutine[Any, Any, None]],
    late: list[float],
) -> None:
    """Call ``fire(due)`` ``rate`` times a second for ``seconds``, never waiting for answers."""
    interval = 1.0 / rate
    started = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for i in range(math.floor(rate * seconds)):
        due = started + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        late.append(time.perf_counter() - due)
        tasks.append(asyncio.create_task(fire(due)))
    await asyncio.gather(*tasks)


async def run_phase(
    mode: str,
    args: argparse.Namespace,
    rest: RestDriver,
    raw: RawDriver,
    pool: Pool,
    readable: list[str],
    rng: random.Random,
) -> Phase:
    phase = Phase(mode)

    async def read(due: float) -> None:
        try:
            await rest.get(rng.choice(readable))
            phase.reads.append(time.perf_counter() - due)
            phase.timeline.append((due, "read", phase.reads[-1]))
        except Exception:
            phase.errors += 1

    async def command(due: float) -> None:
        taken = pool.take()
        if taken is None:
            phase.starved += 1
            return
        referral_id, step = taken
        try:
            if mode.startswith("REST"):
                await rest.command(referral_id, STEPS[step])
            else:
                await raw.command(referral_id, STEPS[step])
            phase.commands.append(time.perf_counter() - due)
            phase.timeline.append((due, STEPS[step], phase.commands[-1]))
        except Exception as exc:
            phase.errors += 1
            say(f"  {mode} {STEPS[step]} failed: {exc}")
        pool.give_back(referral_id, step)

    ignore: list[float] = []
    await asyncio.gather(
        open_loop(args.read_rate, args.seconds, read, ignore),
        open_loop(args.command_rate, args.seconds, command, phase.late_sends),
    )
    return phase


async def create_many(rest: RestDriver, count: int, concurrency: int, first: int) -> list[str]:
    ids: list[str] = []
    serials = iter(range(first + 1, first + count + 1))  # shared by the creators

    async def creator() -> None:
        for n in serials:
            ids.append(await rest.create(mediation_body(n)))

    await asyncio.gather(*(creator() for _ in range(concurrency)))
    return ids


API_FRAMES = (
    ("HTTP server (uvicorn, h11)", "h11_impl.py|h11/"),
    ("API-key lookup (api.keys.authenticate)", "authenticate (api/keys.py"),
    ("GET route: read the row, validate the snapshot", "get_referral (api/routes/referrals.py"),
    ("command route (send_command; awaits Temporal)", "send_command (api/routes/referrals.py"),
    ("validating email addresses (email-validator)", "email_validator/"),
    ("SQLAlchemy + psycopg (every query)", "sqlalchemy/|psycopg/"),
    ("Temporal client (execute_update, codec)", "temporalio/|models/adapters/codec.py"),
    ("response model and JSON (referral_read, serialize)", "referral_read|serialize_response"),
    ("logging (access log line, redaction)", "logging/__init__.py|models/adapters/logging.py"),
)


def print_profile(path: Path) -> None:
    say(f"  profile {path}: share of the API's busy samples (inclusive)")
    for label, share in profile_summary(path, API_FRAMES):
        say(f"    {share:5.1f} %  {label}")


def ms(samples: list[float], p: float) -> str:
    return f"{1000 * percentile(samples, p):.0f}" if samples else "–"


NO_CACHE = "REST, no key cache"
LABELS = {"REST": "REST", "raw": "raw client", NO_CACHE: "REST, key looked up every request"}


def row(what: str, phase: str, samples: list[float], bold: bool = False) -> str:
    p99 = f"**{ms(samples, 99)}**" if bold else ms(samples, 99)
    return (
        f"| {what} | {phase} | {len(samples)} | {ms(samples, 50)} | {ms(samples, 95)} | "
        f"{p99} | {1000 * max(samples, default=0):.0f} |"
    )


def report(phases: list[Phase], modes: list[str], args: argparse.Namespace, head: str) -> str:
    commands = {m: [s for p in phases if p.mode == m for s in p.commands] for m in modes}
    reads_by = {m: [s for p in phases if p.mode == m for s in p.reads] for m in modes}
    # The targets: reads and commands as deployed (with the key cache) against the raw client.
    reads = reads_by["REST"] + reads_by["raw"]
    read_p99 = 1000 * percentile(reads, 99)
    ratio = percentile(commands["REST"], 99) / percentile(commands["raw"], 99)
    errors = sum(p.errors for p in phases)
    starved = sum(p.starved for p in phases)
    late = [s for p in phases for s in p.late_sends]
    lines = [
        head,
        f"**Reads: p99 {read_p99:.0f} ms at {args.read_rate:g} requests/s "
        f"(target < 50 ms: {'met' if read_p99 < 50 else 'NOT met'}). Commands: REST p99 "
        f"{ms(commands['REST'], 99)} ms against the raw client's {ms(commands['raw'], 99)} ms, "
        f"{ratio:.2f}× (target ≤ 1.25×: {'met' if ratio <= 1.25 else 'NOT met'}).**",
        "",
        "| what | phase | n | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    per_round = len(modes)
    for i, p in enumerate(phases):
        phase_name = f"{i // per_round + 1}{'abc'[i % per_round]}"
        lines.append(row(f"command ({LABELS[p.mode]})", phase_name, p.commands))
    for mode in modes:
        lines.append(row(f"**command, {LABELS[mode]}**", "all", commands[mode], bold=True))
    for mode in modes:
        lines.append(
            row(f"GET /v1/referrals/{{id}} during {LABELS[mode]} commands", "all", reads_by[mode])
        )
    lines.append(row("**GET /v1/referrals/{id}** (REST and raw phases)", "all", reads, True))
    lines += [
        "",
        "API CPU per request (reads and commands together, from `/proc`): "
        + "; ".join(
            f"{LABELS[m]} phases "
            f"{statistics.mean(p.api_ms_per_request for p in phases if p.mode == m):.1f} ms"
            for m in modes
        )
        + ".",
    ]
    if NO_CACHE in modes:
        lines.append(
            "The `REST, key looked up every request` phases ran against a second API process "
            "with `SENDMED_API_KEY_CACHE_SECONDS=0` (as before the key cache), reads included."
        )
    lines += [
        "",
        f"Settings: {args.rounds} rounds × {len(modes)} phases of {args.seconds:g} s, the order "
        "rotating each round; reads at "
        f"{args.read_rate:g}/s of random existing referrals in every phase; commands at "
        f"{args.command_rate:g}/s ({', '.join(STEPS)} in turn per referral); "
        f"{errors} errors, {starved} commands not sent for want of an idle referral; the "
        f"client sent requests at most {1000 * max(late, default=0):.0f} ms after they were due "
        f"(p99 {ms(late, 99)} ms). PostgreSQL read model; worker and API with their defaults, "
        f"{eager_note(args.eager_activities)}.",
    ]
    return "\n".join(lines)


def round_figures(phases: list[Phase]) -> dict[str, float]:
    """A --baseline round's figures: its REST and raw phases on one stack."""
    rest = [s for p in phases if p.mode == "REST" for s in p.commands]
    raw = [s for p in phases if p.mode == "raw" for s in p.commands]
    reads = [s for p in phases if p.mode in ("REST", "raw") for s in p.reads]
    figures = {
        "command p50 ms, REST": 1000 * percentile(rest, 50),
        "command p95 ms, REST": 1000 * percentile(rest, 95),
        "command p99 ms, REST": 1000 * percentile(rest, 99),
        "update round trip p50 ms, raw": 1000 * percentile(raw, 50),
        "update round trip p99 ms, raw": 1000 * percentile(raw, 99),
        "REST p99 / raw p99": percentile(rest, 99) / percentile(raw, 99),
        "GET p99 ms": 1000 * percentile(reads, 99),
        "API CPU ms per request, REST phase": statistics.mean(
            p.api_ms_per_request for p in phases if p.mode == "REST"
        ),
    }
    if any(p.mode == NO_CACHE for p in phases):
        uncached = [s for p in phases if p.mode == NO_CACHE for s in p.commands]
        figures["command p99 ms, REST without key cache"] = 1000 * percentile(uncached, 99)
    figures["errors"] = sum(p.errors for p in phases)
    return figures


async def main_async(args: argparse.Namespace) -> int:
    modes = ["REST", "raw"] + ([NO_CACHE] if args.compare_key_cache else [])
    if args.baseline:

        async def one_round(tree: baseline.Tree, i: int) -> dict[str, float]:
            # one phase per mode, in the order round i takes without --baseline
            return round_figures(await measure(args, tree, modes, rounds=1, first_round=i - 1))

        return await baseline.compare(
            args,
            key="latency",
            title="Latency",
            run_round=one_round,
            higher_is_better=(),
            settings=f"Each round: one phase of {args.seconds:g} s per mode ({', '.join(modes)}"
            f", the order rotating by round), reads at {args.read_rate:g}/s, commands at "
            f"{args.command_rate:g}/s ({', '.join(STEPS)} in turn per referral); worker and API "
            f"with their defaults, {eager_note(args.eager_activities)}.",
        )
    started = datetime.now(UTC)
    load_at_start = load_average()
    phases = await measure(args, None, modes, rounds=args.rounds, first_round=0)
    if args.dump:
        args.dump.write_text(json.dumps([{"mode": p.mode, "timeline": p.timeline} for p in phases]))
    body = report(phases, modes, args, provenance(args.database_url, started, load_at_start))
    say("\n" + body)
    if not args.no_doc:
        write_section("latency", "Latency", body)
    return 0


async def measure(
    args: argparse.Namespace,
    tree: baseline.Tree | None,
    modes: list[str],
    *,
    rounds: int,
    first_round: int,
) -> list[Phase]:
    """``rounds`` rounds of one phase per mode on one fresh stack (of ``tree``'s worker and
    API, if given); round ``first_round`` decides the order of the first."""
    rng = random.Random(20261128)
    per_phase = math.ceil(args.command_rate * args.seconds / len(STEPS)) + 10
    root = tree.root if tree else None
    with bench_database(args.database_url, "sendmed_bench_latency", root=root) as url:
        async with baseline.stack_of(
            tree,
            url,
            worker_env=eager_env(args.eager_activities),
        ) as stack:
            token = await new_api_key(url, ["referrals:read", "referrals:write"])
            rest = RestDriver(stack.base_url, token)
            apis = {"REST": rest, "raw": rest}
            api_pids = {"REST": stack.pids()["api"], "raw": stack.pids()["api"]}
            if args.compare_key_cache:
                uncached_url = await stack.start_api(
                    "api-no-key-cache", free_port(), {"SENDMED_API_KEY_CACHE_SECONDS": "0"}
                )
                apis[NO_CACHE] = RestDriver(uncached_url, token)
                api_pids[NO_CACHE] = stack.pids()["api-no-key-cache"]
            raw = RawDriver(
                stack.temporal, stack.task_queue, await herts_policy(url, stack.settings())
            )
            say(f"stack up (logs in {stack.folder}); warming up …")
            warm = await create_many(rest, 20, 5, 0)
            warm_pool = Pool(warm)
            while (item := warm_pool.take()) is not None:
                driver = (rest, raw, apis[modes[-1]])[item[1] % 3]
                await driver.command(item[0], STEPS[item[1]])
                warm_pool.give_back(*item)
            readable = list(warm)
            phases: list[Phase] = []
            serial = 1000
            for i in range(first_round, first_round + rounds):
                order = modes[i % len(modes) :] + modes[: i % len(modes)]
                for mode in order:
                    ids = await create_many(rest, per_phase, 5, serial)
                    serial += per_phase
                    readable += ids
                    await asyncio.sleep(2)  # let the creations' activities settle
                    spy = None
                    if args.profile and i == first_round:
                        out = args.profile / f"api-{mode.replace(' ', '').replace(',', '-')}.txt"
                        spy = start_profile(api_pids[mode], args.seconds, out)
                    cpu0 = cpu_seconds(api_pids[mode])
                    phase = await run_phase(mode, args, apis[mode], raw, Pool(ids), readable, rng)
                    phase.api_cpu = cpu_seconds(api_pids[mode]) - cpu0
                    if spy is not None:
                        spy.wait(timeout=60)
                        print_profile(out)
                    phases.append(phase)
                    stack.check()
                    say(
                        f"round {i + 1} {mode:>4}: commands p50/p99 {ms(phase.commands, 50)}/"
                        f"{ms(phase.commands, 99)} ms (n={len(phase.commands)}); reads "
                        f"p50/p99 {ms(phase.reads, 50)}/{ms(phase.reads, 99)} ms "
                        f"(n={len(phase.reads)}); API {phase.api_ms_per_request:.1f} ms CPU per "
                        f"request; errors {phase.errors}, starved {phase.starved}"
                    )
            for driver in apis.values():
                await driver.close()
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=PG_BASE, help="PostgreSQL server to use")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=40.0, help="per phase")
    parser.add_argument("--read-rate", type=float, default=50.0, help="GETs per second")
    parser.add_argument("--command-rate", type=float, default=5.0, help="commands per second")
    parser.add_argument(
        "--compare-key-cache",
        action="store_true",
        help="a third phase per round: a second API looking the key up on every request",
    )
    parser.add_argument("--eager-activities", action="store_true", help=EAGER_HELP)
    parser.add_argument("--no-doc", action="store_true", help="do not touch PERFORMANCE.md")
    baseline.add_arguments(parser)
    parser.add_argument("--dump", type=Path, help="write every sample (due time, latency) here")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the API through round 1's phases; stacks and a summary in DIR",
    )
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with stop_on_sigterm():
        return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
