"""A minimal workflow that runs ``dispatch_document`` the way the referral workflow will:
an activity with a start-to-close timeout and a retry policy with backoff."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.messages import DispatchReport, DocumentRequest


@workflow.defn(name="DispatchDocumentTest")
class DispatchDocumentWorkflow:
    @workflow.run
    async def run(self, request: DocumentRequest) -> DispatchReport:
        report: DispatchReport = await workflow.execute_activity(
            "dispatch_document",
            request,
            result_type=DispatchReport,
            start_to_close_timeout=timedelta(seconds=2),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=200),
                backoff_coefficient=1.5,
                maximum_interval=timedelta(seconds=1),
                maximum_attempts=30,
            ),
        )
        return report
