"""``make run`` (``deploy/run_local.py``) as a user runs it: it keeps its data private, gives
the Web UI a per-run codec token, sends no server banner, restarts a child that dies (a
worker or API killed with ``kill -9``), and stops everything only on SIGTERM/Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import stat
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.faults.conftest import ROOT, Process, tail, wait_until

STARTED = re.compile(r"(\w+) started \(pid (\d+)\)")


def pids(log: Path, name: str) -> list[int]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return [int(pid) for who, pid in STARTED.findall(text) if who == name]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not status.exists() or status.read_text().split()[2] != "Z"


def cmdline(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_make_run_restarts_a_killed_worker_or_api_and_stops_only_on_sigterm_with_private_data(
    tmp_path: Path, processes: list[Process]
) -> None:
    data = tmp_path / "var"
    api_port = free_port()
    env = {
        "SENDMED_DATA_DIR": str(data),
        "SENDMED_TEMPORAL_DEV_PORT": str(free_port()),
        "SENDMED_TEMPORAL_UI_PORT": str(free_port()),
        "SENDMED_API_PORT": str(api_port),
        "SENDMED_TASK_QUEUE": f"make-run-{uuid.uuid4()}",
        "SENDMED_RETENTION_SCHEDULE": "false",
        "SENDMED_LOG_FORMAT": "console",
    }
    log = tmp_path / "make-run.log"
    run = Process([sys.executable, str(ROOT / "deploy" / "run_local.py")], log, env)
    processes.append(run)
    run.start()
    base = f"http://127.0.0.1:{api_port}"

    async def ready() -> bool:
        if not run.running:
            pytest.fail(f"make run exited:\n{tail(log)}")
        return "SEND referral service is running" in log.read_text(errors="replace")

    await wait_until(ready, "make run ready", within=180)
    try:
        # Private data: the folder, the database and the Temporal store.
        assert mode(data) == 0o700
        assert mode(data / "sendmed.db") == 0o600
        assert mode(data / "temporal.db") == 0o600

        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            health = await http.get("/healthz")
            assert health.status_code == 200
            assert "server" not in health.headers

            # The dev server was given the codec endpoint with this run's token, and only
            # that path opens the codec without a key; the UI's Origin alone does not.
            (temporal_pid,) = pids(log, "temporal")
            argv = cmdline(temporal_pid)
            endpoint = argv[argv.index(b"--ui-codec-endpoint") + 1].decode()
            token = endpoint.rsplit("/codec/", 1)[1]
            assert len(token) >= 32
            body = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "e30="}]}
            ui = {"Origin": f"http://127.0.0.1:{env['SENDMED_TEMPORAL_UI_PORT']}"}
            assert (await http.post(f"/codec/{token}/decode", json=body)).status_code == 200
            assert (await http.post("/codec/decode", json=body, headers=ui)).status_code == 401

            for name in ("worker", "api"):
                (first,) = pids(log, name)
                os.kill(first, signal.SIGKILL)

                async def restarted(name: str = name, first: int = first) -> bool:
                    found = pids(log, name)
                    return len(found) == 2 and alive(found[1]) and not alive(first)

                await wait_until(restarted, f"the {name} restarted", within=60)
                assert re.search(rf"{name} \(pid {first}\) exited with code -9", log.read_text())

            async def serving() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(serving, "the restarted API ready", within=60)
    finally:
        children = [pid for name in ("temporal", "worker", "api") for pid in pids(log, name)]
        assert run.signal(signal.SIGTERM, timeout=90) == 0
    await wait_until(
        lambda: not any(alive(pid) for pid in children), "no child left running", within=10
    )
    assert "Stopped." in log.read_text()
