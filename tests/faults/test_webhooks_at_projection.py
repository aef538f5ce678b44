"""Webhooks go out with the projection (perf-v1): no activity of their own when the endpoint
answers, handed to ``publish_events`` when it does not, and each delivered once either way."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.messages import PUBLISH_EVENTS, workflow_id
from tests.conftest import Database
from tests.e2e.helpers import command, create
from tests.factories import mediation_body
from tests.faults.conftest import fault_settings, in_process_service, ok
from tests.servers import Receiver, webhook_receiver

DECLINED = ("referral.created", "referral.status_changed", "referral.closed")


async def activities_scheduled(client: Client, wf_id: str) -> Counter[str]:
    scheduled: Counter[str] = Counter()
    async for event in client.get_workflow_handle(wf_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.activity_task_scheduled_event_attributes.activity_type.name] += 1
    return scheduled


async def local_activity_summaries(client: Client, wf_id: str) -> list[str]:
    """What the Web UI shows for each local activity (its summary, decoded by the codec)."""
    summaries: list[str] = []
    async for event in client.get_workflow_handle(wf_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and event.HasField(
            "user_metadata"
        ):
            (text,) = await client.data_converter.decode([event.user_metadata.summary], [str])
            summaries.append(text)
    return summaries


async def declined_referral(
    dev_env: WorkflowEnvironment, db: Database, tmp_path: Path, hooks: Receiver, answers: list[int]
) -> tuple[str, Counter[str]]:
    """A referral driven to its declined certificate, its webhooks to ``hooks`` answering
    ``answers`` first (then 204); returns its id and the activities its workflow scheduled."""
    settings = fault_settings(
        db,
        tmp_path,
        dev_env.client.service_client.config.target_host,
    )
    async with in_process_service(db, settings) as (client, http):
        created = await http.post("/v1/webhook-subscriptions", json={"url": hooks.url("office")})
        hooks.secrets["office"] = (await ok(created, 201))["secret"]
        hooks.answers["office"] = list(answers)
        referral = await create(http, mediation_body())
        rid = referral["id"]
        await ok(await command(http, rid, "information-session", {}))
        closed = await ok(await command(http, rid, "decline-mediation", {}))
        assert closed["status"] == "closed"
        await asyncio.wait_for(client.get_workflow_handle(workflow_id(rid)).result(), 90)
        # Every send is visible in the Web UI: the projection's summary names its webhooks.
        summaries = await local_activity_summaries(client, workflow_id(rid))
        assert any(
            t.startswith("project v") and "webhooks: referral.created" in t for t in summaries
        ), summaries
        return rid, await activities_scheduled(client, workflow_id(rid))


def delivered_once(hooks: Receiver, rid: str) -> Counter[str]:
    mine = [d for d in hooks.at("office") if d.payload["data"]["referral_id"] == rid]
    ids = [d.webhook_id for d in mine]
    assert len(ids) == len(set(ids)), "a webhook was delivered twice"
    return Counter(d.payload["type"] for d in mine)


async def test_webhooks_go_out_with_the_projection_when_the_endpoint_answers(
    dev_env: WorkflowEnvironment, fault_db: Database, tmp_path: Path
) -> None:
    async with webhook_receiver() as hooks:
        rid, scheduled = await declined_referral(dev_env, fault_db, tmp_path, hooks, [])
        types = delivered_once(hooks, rid)
    assert all(types[t] >= 1 for t in DECLINED), types
    assert types["referral.created"] == types["referral.closed"] == 1
    assert scheduled[PUBLISH_EVENTS] == 0, scheduled  # no activity of their own
    assert "record_referral" not in scheduled  # projections are local activities


async def test_a_webhook_refused_at_projection_is_retried_by_publish_events_and_sent_once(
    dev_env: WorkflowEnvironment, fault_db: Database, tmp_path: Path
) -> None:
    async with webhook_receiver() as hooks:
        # The endpoint fails the first delivery (referral.created) once, then answers.
        rid, scheduled = await declined_referral(dev_env, fault_db, tmp_path, hooks, [503])
        types = delivered_once(hooks, rid)
    assert all(types[t] >= 1 for t in DECLINED), types
    assert types["referral.created"] == types["referral.closed"] == 1
    assert scheduled[PUBLISH_EVENTS] == 1, scheduled  # only what the projection could not send
