"""The worker: runs referral workflows and their activities on one task queue.

``python worker.py`` (started by ``make run``) builds everything from ``Settings``: it applies
database migrations, connects to Temporal and runs until SIGINT/SIGTERM, then lets in-flight
activities finish (graceful shutdown) and exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.calendar import CalendarActivities
from activities.mediators import MediatorActivities
from activities.notify import NotifyActivities
from activities.records import RecordActivities
from models import migrate
from models.db import make_engine, make_sessionmaker
from models.settings import Settings
from workflows.client import connect
from workflows.referral import ReferralWorkflow

log = logging.getLogger("worker")

WORKFLOWS: tuple[type, ...] = (ReferralWorkflow,)

# Pure third-party modules that pydantic imports lazily while decoding workflow inputs.
PASSTHROUGH_MODULES = ("email_validator", "idna", "dns", "dateutil")


def build_activities(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> list[Any]:
    calendar = CalendarActivities(extra_holidays=settings.extra_bank_holidays)
    records = RecordActivities(sessionmaker)
    notify = NotifyActivities(sessionmaker)
    mediators = MediatorActivities(sessionmaker)
    return [
        calendar.load_bank_holidays,
        records.record_referral,
        notify.send_notification,
        mediators.vet_and_reserve_booking,
        mediators.release_reservation,
    ]


def sandbox_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def build_worker(
    client: Client,
    *,
    task_queue: str,
    activities: Sequence[Any],
    workflows: Sequence[type] = WORKFLOWS,
    max_cached_workflows: int = 1000,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(workflows),
        activities=list(activities),
        max_cached_workflows=max_cached_workflows,
        graceful_shutdown_timeout=timedelta(seconds=15),
        workflow_runner=sandbox_runner(),
    )


async def run(settings: Settings) -> None:
    await asyncio.to_thread(migrate.upgrade, settings.database_target)
    engine = make_engine(settings.database_target)
    client = await connect(settings.temporal_target, settings.temporal_namespace)
    worker = build_worker(
        client,
        task_queue=settings.task_queue,
        activities=build_activities(make_sessionmaker(engine), settings),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with worker:
            log.info("worker started on task queue %s", settings.task_queue)
            await stop.wait()
            log.info("worker stopping")
    finally:
        await engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(run(Settings()))


if __name__ == "__main__":
    main()
