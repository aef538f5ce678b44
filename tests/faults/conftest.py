"""Fault tests: real processes we start, kill and restart ourselves, with real signals.

Only processes started here are ever signalled (by their pid): a Temporal dev server persisted
to a file (``temporal server start-dev``), the worker (``python worker.py``), and the small
servers of ``tests.servers`` that play the mail server and a back office. The session's
``stack`` is shared with other tests, so nothing here kills any part of it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from api.keys import ALL_SCOPES, create_key
from api.main import create_app
from models.settings import Settings
from models.store.document_tables import DeliveryRow
from tests.conftest import (
    DEV_SERVER_ARGS,
    Database,
    binary,
    free_port,
    make_settings,
    own_database,
    serve_api,
)
from worker import build_activities, build_worker
from workflows import search_attributes
from workflows.client import connect, data_converter

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- polling


async def wait_until(
    check: Callable[[], Awaitable[bool] | bool], what: str, within: float = 30.0
) -> None:
    """Poll ``check`` (sync or async) until it is true; fail naming ``what`` after ``within``
    seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f}s waiting for: {what}")
        await asyncio.sleep(0.1)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# --------------------------------------------------------------------------- processes


@dataclass
class Process:
    """A child process we own: started with a log file, signalled only by its own pid."""

    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        base = {k: v for k, v in os.environ.items() if not k.startswith("SENDMED_")}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env={**base, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: signal.Signals, timeout: float = 30.0) -> int:
        """Send ``signum`` and wait for the process to end; returns its exit status."""
        assert self.proc is not None
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=timeout)

    def freeze(self) -> None:
        """``kill -STOP``: the process holds its sockets open but answers nothing."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """``kill -CONT``: a frozen process carries on where it stopped."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """``kill -9``: no handler runs, nothing is flushed, sockets are simply dropped."""
        status = self.signal(signal.SIGKILL)
        assert status == -signal.SIGKILL, f"{self.argv[0]} ended with {status}, not by SIGKILL"

    def cleanup(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Every process a test starts; whatever is still running at the end is killed."""
    started: list[Process] = []
    yield started
    for process in started:
        process.cleanup()


class TemporalServer(Process):
    """``temporal server start-dev`` persisted to ``db_file``, restartable on the same port."""

    def __init__(self, db_file: Path, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.db_file = db_file
        self.extra = list(extra)
        super().__init__([], log)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.argv = [
            binary("temporal"),
            "server",
            "start-dev",
            "--db-filename",
            str(self.db_file),
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--headless",
            "--log-level",
            "error",
            *DEV_SERVER_ARGS,
            *search_attributes.cli_flags(),
            *self.extra,
        ]
        super().start()

    async def ready(self, within: float = 60.0) -> None:
        """Serving: a lookup of an unknown workflow answers 'not found' (shards acquired)."""
        deadline = time.monotonic() + within
        while True:
            if not self.running:
                pytest.fail(f"Temporal dev server exited:\n{tail(self.log)}")
            try:
                client = await Client.connect(self.target)
                await client.get_workflow_handle(f"probe-{uuid.uuid4()}").describe()
            except RPCError as exc:
                if exc.status is RPCStatusCode.NOT_FOUND:
                    return
            except RuntimeError:  # not accepting connections yet
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Temporal dev server not ready after {within}s:\n{tail(self.log)}")
            await asyncio.sleep(0.1)


class WorkerProcess(Process):
    """``python worker.py``, configured only through ``SENDMED_*`` variables."""

    def __init__(self, settings: Settings, log: Path) -> None:
        super().__init__([sys.executable, str(ROOT / "worker.py")], log, worker_env(settings))

    async def started(self, client: Client, within: float = 60.0) -> None:
        """Polling its task queue: Temporal lists a poller with this process's identity."""
        assert self.proc is not None
        identity = f"{self.proc.pid}@"  # the SDK's default worker identity is pid@host
        request = DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=self.env["SENDMED_TASK_QUEUE"]),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )

        async def polling() -> bool:
            if not self.running:
                pytest.fail(f"worker exited:\n{tail(self.log)}")
            found = await client.workflow_service.describe_task_queue(request)
            return any(p.identity.startswith(identity) for p in found.pollers)

        await wait_until(polling, f"worker {self.proc.pid} polling", within)


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment that makes ``Settings()`` in a child process equal ``settings``."""
    env = {
        "SENDMED_ENVIRONMENT": settings.environment,
        "SENDMED_DATA_DIR": str(settings.data_dir),
        "SENDMED_TEMPORAL_ADDRESS": settings.temporal_target,
        "SENDMED_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "SENDMED_TASK_QUEUE": settings.task_queue,
        "SENDMED_DATABASE_URL": settings.database_target,
        "SENDMED_API_PORT": str(settings.api_port),
        "SENDMED_PUBLIC_BASE_URL": settings.api_base_url,
        "SENDMED_SEND_TIMEOUT_SECONDS": str(settings.send_timeout_seconds),
        "SENDMED_DELIVERY_LEASE_SECONDS": str(settings.delivery_lease_seconds),
        "SENDMED_RETENTION_SCHEDULE": "false",
        "SENDMED_LOG_LEVEL": "INFO",
        "SENDMED_LOG_FORMAT": "console",
        "SENDMED_WEBHOOK_ALLOWED_HOSTS": json.dumps(list(settings.webhook_allowed_hosts)),
        "SENDMED_WEBHOOK_ALLOW_PUBLIC_ADDRESSES": str(settings.webhook_allow_public_addresses),
    }
    if settings.smtp_host:
        env["SENDMED_SMTP_HOST"] = settings.smtp_host
        env["SENDMED_SMTP_PORT"] = str(settings.smtp_port)
        env["SENDMED_SMTP_STARTTLS"] = str(settings.smtp_starttls).lower()
    return env


# --------------------------------------------------------------------------- database


@pytest.fixture
async def fault_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh database per test: PostgreSQL when TEST_DATABASE_URL is set, else SQLite in a
    folder of its own (the database-down test moves the folder away)."""
    folder = tmp_path / "database"
    folder.mkdir()
    async with own_database(folder / "sendmed.db") as db:
        yield db


async def delivery_rows(db: Database, *referral_ids: str) -> list[DeliveryRow]:
    async with db.sessionmaker() as session:
        rows = await session.exec(
            select(DeliveryRow)
            .where(col(DeliveryRow.referral_id).in_(referral_ids))
            .order_by(col(DeliveryRow.key))
        )
        return list(rows.all())


# --------------------------------------------------------------------------- clients


def fault_settings(db: Database, tmp_path: Path, temporal_address: str, **values: Any) -> Settings:
    """One fault test's settings: its own data folder, database, task queue and API port, on
    the Temporal server at ``temporal_address``; ``values`` add to or override them."""
    return make_settings(
        **{
            "data_dir": tmp_path / "data",
            "database_url": db.url,
            "task_queue": f"faults-{uuid.uuid4()}",
            "api_port": free_port(),
            "temporal_address": temporal_address,
            **values,
        }
    )


async def codec_client(settings: Settings) -> Client:
    """A Temporal client as the API and worker build theirs: payloads encrypted."""
    converter = data_converter(settings.payload_codec())
    return await connect(settings.temporal_target, settings.temporal_namespace, converter=converter)


async def api_client(db: Database, base_url: str, name: str = "faults") -> httpx.AsyncClient:
    """An HTTP client holding a key with every scope (its client name is ``name``)."""
    key = await create_key(db.sessionmaker, name=name, scopes=ALL_SCOPES)
    return httpx.AsyncClient(
        base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {key.token}"}
    )


def codec_worker(db: Database, client: Client, settings: Settings) -> Worker:
    """The worker as ``worker.py`` builds it, in this process, on ``client``."""
    return build_worker(
        client,
        task_queue=settings.task_queue,
        activities=build_activities(db.sessionmaker, settings),
    )


@asynccontextmanager
async def in_process_service(
    db: Database, settings: Settings
) -> AsyncIterator[tuple[Client, httpx.AsyncClient]]:
    """The worker and the API in this process (as ``make run`` builds them), and an HTTP client
    with every scope: for faults that hit something else (the mail server, Temporal)."""
    client = await codec_client(settings)
    worker = codec_worker(db, client, settings)
    app = create_app(settings, temporal=client)
    async with worker, serve_api(app, settings.api_port) as base_url:
        http = await api_client(db, base_url)
        async with http:
            yield client, http


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body
