"""A back office whose endpoint is dead never holds a referral's workflow open: its webhooks
are retried for a window, then failed for good (the provider told), and the workflow closes
when its case does."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from models.messages import workflow_id
from tests.conftest import Database, free_port
from tests.e2e.helpers import command, create
from tests.factories import mediation_body
from tests.faults.conftest import delivery_rows, fault_settings, in_process_service, ok

WINDOW_HOURS = 0.001  # 3.6 seconds instead of 3 days


async def test_a_referral_s_workflow_closes_when_its_only_webhook_endpoint_is_dead(
    dev_env: WorkflowEnvironment, fault_db: Database, tmp_path: Path
) -> None:
    settings = fault_settings(
        fault_db,
        tmp_path,
        dev_env.client.service_client.config.target_host,
        webhook_retry_hours=WINDOW_HOURS,
    )
    async with in_process_service(fault_db, settings) as (client, http):
        dead = f"http://127.0.0.1:{free_port()}/nobody-listens"  # refused connections
        await ok(await http.post("/v1/webhook-subscriptions", json={"url": dead}), 201)
        referral = await create(http, mediation_body())
        closed = await ok(await command(http, referral["id"], "withdraw", {}))
        assert closed["status"] == "closed"
        handle = client.get_workflow_handle(workflow_id(referral["id"]))
        await asyncio.wait_for(handle.result(), timeout=90)
        described = await handle.describe()
        assert described.status is WorkflowExecutionStatus.COMPLETED
    webhooks = [r for r in await delivery_rows(fault_db, referral["id"]) if r.channel == "webhook"]
    assert webhooks
    assert {r.status for r in webhooks} == {"failed"}
    assert all((r.detail or "").startswith("gave up after") for r in webhooks)
