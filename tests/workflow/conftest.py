"""Workflow-tier fixtures: a worker with the real activities on a throw-away SQLite database."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from models.domain import transitions as tr
from models.domain.clock import LONDON
from models.domain.commands import Command
from models.domain.referral import Referral, ReferralCreate
from models.messages import CommandEnvelope, StartReferral, workflow_id
from tests.conftest import Database, make_settings, migrated_database
from tests.factories import seed_registry
from worker import build_activities, build_worker
from workflows.referral import ReferralWorkflow

CREATE = TypeAdapter(ReferralCreate)
# Bump the folder when the workflow changes, so every earlier version keeps replaying.
HISTORIES = Path(__file__).parent / "histories" / "v8"
COMMAND: TypeAdapter[Any] = TypeAdapter(Command)


def london(day: date, at: time = time(0, 0)) -> datetime:
    return datetime.combine(day, at, tzinfo=LONDON)


@dataclass
class Harness:
    env: WorkflowEnvironment
    db: Database
    task_queue: str
    registry: dict[str, str]

    @property
    def client(self) -> Client:
        return self.env.client

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def advance_to(self, instant: datetime) -> None:
        """Move the (time-skipping) server clock forward to ``instant``."""
        delta = instant - await self.now()
        if delta > timedelta(0):
            await self.env.sleep(delta)

    async def start(
        self,
        body: dict[str, Any],
        *,
        received_on: date,
        policy: tr.Policy | None = None,
    ) -> WorkflowHandle[ReferralWorkflow, Any]:
        referral_id = str(uuid.uuid4())
        start = StartReferral(
            referral_id=referral_id,
            request=CREATE.validate_python(body),
            received_on=received_on,
            created_at=datetime.now(UTC),
            actor="test",
            request_hash="h",
            policy=policy or tr.Policy(),
            local_authority_name="Hertfordshire County Council",
        )
        handle = await self.client.start_workflow(
            ReferralWorkflow.run,
            start,
            id=workflow_id(referral_id),
            task_queue=self.task_queue,
        )
        await self.wait_for(handle, lambda r: r is not None)
        return handle

    async def send(
        self, handle: WorkflowHandle[ReferralWorkflow, Any], name: str, **fields: Any
    ) -> Referral:
        command = COMMAND.validate_python({"command": name, **fields})
        result: Referral = await handle.execute_update(
            name, CommandEnvelope(actor="test", command=command), result_type=Referral
        )
        return result

    async def finish(self, handle: WorkflowHandle[ReferralWorkflow, Any], name: str) -> None:
        """Wait for the referral to close; with RECORD_HISTORIES=1 save its history for replay."""
        await handle.result()
        if os.environ.get("RECORD_HISTORIES") == "1":
            history = await handle.fetch_history()
            HISTORIES.mkdir(parents=True, exist_ok=True)
            (HISTORIES / f"{name}.json").write_text(history.to_json())

    async def state(self, handle: WorkflowHandle[ReferralWorkflow, Any]) -> Referral:
        referral = await handle.query(ReferralWorkflow.referral)
        assert referral is not None
        return referral

    async def wait_for(
        self,
        handle: WorkflowHandle[ReferralWorkflow, Any],
        predicate: Callable[[Referral | None], bool],
        seconds: float = 20.0,
    ) -> Referral | None:
        """Poll the live state (activities run in real time) until ``predicate`` holds."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            referral = await handle.query(ReferralWorkflow.referral)
            if predicate(referral):
                return referral
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"condition not met; state: {referral!r}")
            await asyncio.sleep(0.05)


@pytest.fixture
async def harness(timeskip_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Harness]:
    db = await migrated_database(f"sqlite+aiosqlite:///{tmp_path / 'wf.db'}")
    registry = await seed_registry(db.sessionmaker)
    task_queue = f"wf-{uuid.uuid4()}"
    settings = make_settings(database_url=db.url, task_queue=task_queue)
    worker = build_worker(
        timeskip_env.client,
        task_queue=task_queue,
        activities=build_activities(db.sessionmaker, settings),
        max_cached_workflows=0,
    )
    async with worker:
        yield Harness(timeskip_env, db, task_queue, registry)
    await db.engine.dispose()


def first_future(years: dict[int, Any], after: date) -> int:
    """The first scenario year whose dates are all still ahead of the test server's clock."""
    for year in sorted(years):
        if date(year, 1, 1) > after or years[year]["starts"] > after:
            return year
    pytest.fail(f"add scenario years after {max(years)}: every listed scenario is in the past")
