"""RetentionWorkflow: once a day, erase the personal data of referrals closed too long ago.

Started by the Temporal Schedule ``retention-daily`` (02:30 Europe/London), which the worker
ensures on start (``workflows/schedules.py``). The workflow takes today's date from
``workflow.now()`` and calls ``erase_expired_referrals`` in batches until nothing is due; the
activity holds the retention period (``SENDMED_RETENTION_DAYS``) and does the erasing.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.domain.clock import london_date
    from models.messages import (
        ERASE_EXPIRED_REFERRALS,
        RETENTION_WORKFLOW,
        RetentionRequest,
        RetentionResult,
        RetentionRun,
        RetentionSummary,
    )


@workflow.defn(name=RETENTION_WORKFLOW)
class RetentionWorkflow:
    @workflow.run
    async def run(self, params: RetentionRun) -> RetentionSummary:
        today = london_date(workflow.now())
        erased = purged = 0
        for _ in range(params.max_batches):
            result = await workflow.execute_activity(
                ERASE_EXPIRED_REFERRALS,
                RetentionRequest(today=today, batch=params.batch),
                result_type=RetentionResult,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5)),
                summary="erase personal data past retention",
            )
            erased += result.erased
            purged += result.idempotency_records_deleted
            if not result.more:
                break
        return RetentionSummary(erased=erased, idempotency_records_deleted=purged)
