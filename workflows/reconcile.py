"""ReconcileWorkflow: find referrals whose workflow stopped without closing the case.

Started by the Temporal Schedule ``reconcile-referrals`` (every
``SENDMED_RECONCILE_INTERVAL_MINUTES``, 15 by default), which the worker ensures on start
(``workflows/schedules.py``), like the retention schedule. A terminated, failed or
timed-out workflow cannot clean up after itself; the activity
(``activities/reconcile.py``) marks such referrals ``stopped`` and tells their provider.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.domain.clock import london_date
    from models.messages import (
        RECONCILE_STOPPED_REFERRALS,
        RECONCILE_WORKFLOW,
        ReconcileRequest,
        ReconcileResult,
    )


@workflow.defn(name=RECONCILE_WORKFLOW)
class ReconcileWorkflow:
    @workflow.run
    async def run(self) -> ReconcileResult:
        result: ReconcileResult = await workflow.execute_activity(
            RECONCILE_STOPPED_REFERRALS,
            ReconcileRequest(today=london_date(workflow.now())),
            result_type=ReconcileResult,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=5),
            summary="mark referrals stopped whose workflow ended with the case open",
        )
        return result
