"""dispatch_document run by a real Temporal worker (dev server): an attempt that hangs in the
middle of sending is timed out and retried by Temporal, and still exactly one email arrives."""

from __future__ import annotations

import uuid

from temporalio.testing import WorkflowEnvironment

from models.messages import DispatchReport, DocumentRequest
from tests.conftest import Database
from tests.documents import referrals as R
from tests.documents.conftest import (
    Receiver,
    SmtpServer,
    deliveries,
    document_activities,
    project,
    subscribe,
)
from tests.documents.dispatch_workflow import DispatchDocumentWorkflow
from worker import build_worker

FAMILY = "grace.parent@example.org"
LA = "sam.officer@example.gov.uk"


async def test_attempt_hung_mid_send_is_retried_by_temporal_and_delivers_once(
    dev_env: WorkflowEnvironment, db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    referral = R.deemed()
    await project(db, referral)
    await subscribe(db, receiver, "all")
    number = referral.certificates[0].number
    # The first message hangs in DATA far longer than the activity's 2 s start-to-close.
    smtp.sink.stall_before_accept = 60.0
    acts = document_activities(db, smtp.mailer(timeout=5.0), send_timeout=2.5, lease=3.0)
    task_queue = f"docs-{uuid.uuid4()}"
    request = DocumentRequest(
        key=f"referral-{referral.id}:effect-1",
        referral_id=referral.id,
        kind="certificate",
        number=number,
        recipients=("family", "la"),
    )
    async with build_worker(
        dev_env.client,
        task_queue=task_queue,
        activities=[acts.dispatch_document],
        workflows=[DispatchDocumentWorkflow],
    ):
        report: DispatchReport = await dev_env.client.execute_workflow(
            DispatchDocumentWorkflow.run,
            request,
            id=f"dispatch-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        # A replayed or re-run workflow asks again with the same effect: nothing new is sent.
        again: DispatchReport = await dev_env.client.execute_workflow(
            DispatchDocumentWorkflow.run,
            request,
            id=f"dispatch-{uuid.uuid4()}",
            task_queue=task_queue,
        )

    assert again == report
    assert {(d.recipient, d.status) for d in report.deliveries} == {
        ("family", "sent"),
        ("la", "sent"),
        ("whsub_all", "sent"),
    }
    assert sorted(r for m in smtp.sink.messages() for r in m.rcpt_tos) == sorted([FAMILY, LA])
    assert len(receiver.at("all")) == 1
    rows = {r.recipient: r for r in await deliveries(db, referral.id)}
    assert rows["family"].attempts + rows["la"].attempts >= 3  # one attempt was lost mid-send
