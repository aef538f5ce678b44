"""ReconcileWorkflow: find referrals whose workflow stopped without closing the case.

Started by the Temporal Schedule ``reconcile-referrals`` (every
``SENDMED_RECONCILE_INTERVAL_MINUTES``, 15 by default), which the worker ensures on start
(``ensure_reconcile_schedule``), like the retention schedule. A terminated, failed or
timed-out workflow cannot clean up after itself; the activity
(``activities/reconcile.py``) marks such referrals ``stopped`` and tells their provider.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
)
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.domain.clock import london_date
    from models.messages import ReconcileRequest, ReconcileResult

SCHEDULE_ID = "reconcile-referrals"
WORKFLOW_ID = "reconcile-referrals"


@workflow.defn(name="ReconcileWorkflow")
class ReconcileWorkflow:
    @workflow.run
    async def run(self) -> ReconcileResult:
        result: ReconcileResult = await workflow.execute_activity(
            "reconcile_stopped_referrals",
            ReconcileRequest(today=london_date(workflow.now())),
            result_type=ReconcileResult,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=5),
            summary="mark referrals stopped whose workflow ended with the case open",
        )
        return result


# --------------------------------------------------------------------------- operations
# Called by the worker and the tests (never from workflow code).


def reconcile_schedule(task_queue: str, every_minutes: int) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileWorkflow.run,
            id=WORKFLOW_ID,
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
        await client.create_schedule(SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(SCHEDULE_ID).update(
            lambda _current: ScheduleUpdate(schedule=schedule)
        )
