"""The database refuses connections while the projection runs; the read model catches up."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.idempotency import key_digest
from api.main import create_app
from models.messages import PROJECT_REFERRAL, Projected, Projection, workflow_id
from models.store.db import is_sqlite, make_engine, make_sessionmaker
from tests.conftest import Database, key_id_of, serve_api
from tests.e2e.helpers import create
from tests.factories import mediation_body
from tests.faults.conftest import api_client, codec_client, fault_settings, ok, wait_until
from worker import build_activities, build_worker

ADMITTED = UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED


class CountedProjection:
    """The real ``project_referral`` (a local activity), counting the attempts Temporal makes."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.failed_attempts = 0

    @activity.defn(name=PROJECT_REFERRAL)
    async def project_referral(self, projection: Projection) -> Projected:
        try:
            result: Projected = await self._real(projection)
        except Exception:
            self.failed_attempts += 1
            raise
        return result


@contextlib.asynccontextmanager
async def database_down(db: Database) -> AsyncIterator[None]:
    """The database refuses every new connection, and existing ones are cut, until the end.

    PostgreSQL: ``ALTER DATABASE … ALLOW_CONNECTIONS false`` and every backend terminated.
    SQLite: the database's folder is moved away, so the file cannot be opened (connections
    already open keep their file handles, as they would on a real server's socket).
    """
    url = make_url(db.url)
    if is_sqlite(db.url):
        assert url.database
        folder = Path(url.database).parent
        away = folder.with_name(folder.name + "-away")
        folder.rename(away)
        try:
            yield
        finally:
            away.rename(folder)
        return
    admin = url.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    name = url.database
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )
    try:
        yield
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


async def admitted(client: Client, wf_id: str, update_id: str, within: float = 30.0) -> None:
    """Temporal holds the update (the API has done its own reads and is waiting on it)."""
    request = PollWorkflowExecutionUpdateRequest(
        namespace=client.namespace,
        update_ref=UpdateRef(
            workflow_execution=WorkflowExecution(workflow_id=wf_id), update_id=update_id
        ),
        wait_policy=WaitPolicy(lifecycle_stage=ADMITTED),
    )
    deadline = time.monotonic() + within
    while True:
        try:
            await client.workflow_service.poll_workflow_execution_update(request)
            return
        except RPCError:  # not found: not sent yet
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def timeline(http: Any, referral_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = (
        await ok(await http.get(f"/v1/referrals/{referral_id}/events"))
    )["items"]
    return events


async def test_database_refusing_connections_during_projection_retries_and_read_model_catches_up(
    dev_env: WorkflowEnvironment, fault_db: Database, tmp_path: Path
) -> None:
    """A command reaches the workflow while the database refuses connections: the projection
    (``project_referral``, a local activity) fails and is retried by Temporal, the command waits,
    and once the database is back the command answers, the read model shows the new state and
    the timeline holds every event exactly once."""
    settings = fault_settings(
        fault_db,
        tmp_path,
        dev_env.client.service_client.config.target_host,
    )
    client = await codec_client(settings)
    app = create_app(settings, temporal=client)
    async with serve_api(app, settings.api_port) as base_url:
        http = await api_client(fault_db, base_url, name="faults")
        async with http:
            first = build_worker(
                client,
                task_queue=settings.task_queue,
                activities=build_activities(fault_db.sessionmaker, settings),
            )
            async with first:
                referral = await create(http, mediation_body())
            rid = referral["id"]
            before = await timeline(http, rid)

            # No worker for a moment: the command is checked by the API and waits in Temporal.
            key = f"session-{uuid.uuid4()}"
            path = f"/v1/referrals/{rid}/information-session"
            sending = asyncio.create_task(http.post(path, headers={"Idempotency-Key": key}))
            update_id = f"information_session-{key_digest(key_id_of(http), key)[:32]}"
            await admitted(client, workflow_id(rid), update_id)

            # The worker that takes over opens its own connections, as a new process would.
            engine = make_engine(fault_db.url)
            activities = build_activities(make_sessionmaker(engine), settings)
            (real,) = [a for a in activities if getattr(a, "__name__", "") == PROJECT_REFERRAL]
            counted = CountedProjection(real)
            activities = [a for a in activities if a is not real] + [counted.project_referral]
            second = build_worker(client, task_queue=settings.task_queue, activities=activities)

            async def projection_retried() -> bool:
                return counted.failed_attempts >= 2

            try:
                async with second:
                    async with database_down(fault_db):
                        await wait_until(projection_retried, "project_referral retried twice")
                        assert not sending.done()  # the command waits for its projection
                    response = await asyncio.wait_for(sending, timeout=60)
            finally:
                await engine.dispose()
                if not sending.done():
                    sending.cancel()

            answered = await ok(response)
            assert answered["status"] == "awaiting_family_decision"
            read = await ok(await http.get(f"/v1/referrals/{rid}"))
            assert read["status"] == "awaiting_family_decision"
            assert read["version"] == answered["version"]
            events = await timeline(http, rid)
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
            assert events[: len(before)] == before
            added = Counter(e["type"] for e in events[len(before) :])
            assert added
            assert all(n == 1 for n in added.values()), added

            # The stored response replays; nothing runs twice.
            again = await http.post(path, headers={"Idempotency-Key": key})
            assert again.headers.get("Idempotent-Replayed") == "true"
            assert again.json() == answered
            assert await timeline(http, rid) == events
