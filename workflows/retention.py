"""RetentionWorkflow: once a day, erase the personal data of referrals closed too long ago.

Started by the Temporal Schedule ``retention-daily`` (02:30 Europe/London), which the worker
ensures on start (``ensure_retention_schedule``). The workflow takes today's date from
``workflow.now()`` and calls ``erase_expired_referrals`` in batches until nothing is due; the
activity holds the retention period (``SENDMED_RETENTION_DAYS``) and does the erasing.

``ensure_namespace_retention`` sets how long Temporal keeps a *closed* workflow's history to
the same period (``make run`` does it on the dev server; see the README for production).
"""

from __future__ import annotations

from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio import workflow
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
)
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.retention import RetentionActivities
    from models.domain.clock import london_date
    from models.messages import RetentionRequest, RetentionRun, RetentionSummary

SCHEDULE_ID = "retention-daily"
WORKFLOW_ID = "retention"


@workflow.defn(name="RetentionWorkflow")
class RetentionWorkflow:
    @workflow.run
    async def run(self, params: RetentionRun) -> RetentionSummary:
        today = london_date(workflow.now())
        erased = purged = 0
        for _ in range(params.max_batches):
            result = await workflow.execute_activity_method(
                RetentionActivities.erase_expired_referrals,
                RetentionRequest(today=today, batch=params.batch),
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5)),
                summary="erase personal data past retention",
            )
            erased += result.erased
            purged += result.idempotency_records_deleted
            if not result.more:
                break
        return RetentionSummary(erased=erased, idempotency_records_deleted=purged)


# --------------------------------------------------------------------------- operations
# Called by the worker and ``make run`` (never from workflow code).


def retention_schedule(task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RetentionWorkflow.run,
            RetentionRun(),
            id=WORKFLOW_ID,
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
        await client.create_schedule(SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(SCHEDULE_ID).update(
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
    ttl = Duration()
    ttl.FromTimedelta(wanted)
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=namespace, config=NamespaceConfig(workflow_execution_retention_ttl=ttl)
        )
    )
    return True
