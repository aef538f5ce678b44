"""The Temporal Schedules the worker ensures on start, and the namespace's retention.

Client code (called by the worker, ``make run`` and the tests; never from workflow code), kept
out of the workflow modules so that these stay importable by the sandbox alone:

- ``retention-daily`` (02:30 Europe/London) starts ``RetentionWorkflow``;
- ``reconcile-referrals`` (every ``SENDMED_RECONCILE_INTERVAL_MINUTES``) starts
  ``ReconcileWorkflow``;
- ``ensure_namespace_retention`` sets how long Temporal keeps a *closed* workflow's history to
  the retention period (``make run`` does it on the dev server; see the README for production).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
)

from models.messages import RetentionRun
from workflows.reconcile import ReconcileWorkflow
from workflows.retention import RetentionWorkflow

RETENTION_SCHEDULE_ID = "retention-daily"
RETENTION_WORKFLOW_ID = "retention"
RECONCILE_SCHEDULE_ID = "reconcile-referrals"
RECONCILE_WORKFLOW_ID = "reconcile-referrals"


def retention_schedule(task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RetentionWorkflow.run,
            RetentionRun(),
            id=RETENTION_WORKFLOW_ID,
            task_queue=task_queue,
            execution_timeout=timedelta(hours=6),
            static_summary="Daily erasure of personal data past the retention period",
        ),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(2)], minute=[ScheduleRange(30)])],
            time_zone_name="Europe/London",
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


async def ensure_retention_schedule(client: Client, task_queue: str) -> None:
    """Create the daily schedule, or bring an existing one up to date (idempotent)."""
    schedule = retention_schedule(task_queue)
    try:
        await client.create_schedule(RETENTION_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(RETENTION_SCHEDULE_ID).update(
            lambda _current: ScheduleUpdate(schedule=schedule)
        )


async def ensure_namespace_retention(client: Client, days: int) -> bool:
    """Make Temporal keep closed workflows' histories ``days`` days; True if it changed."""
    namespace = client.namespace
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    wanted = timedelta(days=days)
    if described.config.workflow_execution_retention_ttl.ToTimedelta() == wanted:
        return False
    config = NamespaceConfig()
    config.workflow_execution_retention_ttl.FromTimedelta(wanted)
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(namespace=namespace, config=config)
    )
    return True


def reconcile_schedule(task_queue: str, every_minutes: int) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileWorkflow.run,
            id=RECONCILE_WORKFLOW_ID,
            task_queue=task_queue,
            execution_timeout=timedelta(hours=1),
            static_summary="Referrals whose workflow stopped with the case open: mark stopped",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=every_minutes))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_reconcile_schedule(client: Client, task_queue: str, every_minutes: int) -> None:
    """Create the schedule, or bring an existing one up to date (idempotent)."""
    schedule = reconcile_schedule(task_queue, every_minutes)
    try:
        await client.create_schedule(RECONCILE_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(RECONCILE_SCHEDULE_ID).update(
            lambda _current: ScheduleUpdate(schedule=schedule)
        )
