"""A projection that crashes after committing is retried by Temporal: each event once, in order.

A real referral runs on the Temporal dev server with the real activities, except that
``record_referral`` raises after its commit on every first attempt (as if the worker died
between the commit and reporting success). Temporal retries it; the timeline must hold
exactly the events the workflow sent, once each, in order.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.records import RecordActivities
from models.domain import transitions as tr
from models.domain.clock import london_date
from models.domain.commands import DeclineMediation, InformationSession
from models.domain.referral import Referral, ReferralCreate
from models.messages import CommandEnvelope, Projection, StartReferral, workflow_id
from models.store import listing
from tests.conftest import Database, make_settings
from tests.factories import mediation_body
from worker import build_activities, build_worker
from workflows.referral import ReferralWorkflow


class CrashAfterCommit:
    """``record_referral`` that commits, then fails its first attempt."""

    def __init__(self, records: RecordActivities) -> None:
        self._records = records
        self.crashes = 0

    @activity.defn(name="record_referral")
    async def record_referral(self, projection: Projection) -> None:
        await self._records.record_referral(projection)
        if activity.info().attempt == 1:
            self.crashes += 1
            raise RuntimeError("worker lost after the commit, before reporting success")


async def projections_sent(client: Client, wf_id: str) -> tuple[list[Projection], list[int]]:
    """What the workflow asked ``record_referral`` to write, and each task's last attempt."""
    sent: list[Projection] = []
    attempts: list[int] = []
    scheduled: set[int] = set()
    async for event in client.get_workflow_handle(wf_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "record_referral":
                scheduled.add(event.event_id)
                (projection,) = await client.data_converter.decode(
                    attrs.input.payloads, [Projection]
                )
                sent.append(projection)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs_started = event.activity_task_started_event_attributes
            if attrs_started.scheduled_event_id in scheduled:
                attempts.append(attrs_started.attempt)
    return sent, attempts


async def test_timeline_has_each_event_once_in_order_when_projection_is_retried(
    db: Database, dev_env: WorkflowEnvironment
) -> None:
    task_queue = f"retry-{uuid.uuid4()}"
    settings = make_settings(database_url=db.url, task_queue=task_queue)
    flaky = CrashAfterCommit(RecordActivities(db.sessionmaker))
    activities: list[Any] = [
        a
        for a in build_activities(db.sessionmaker, settings)
        if getattr(a, "__name__", "") != "record_referral"
    ]
    activities.append(flaky.record_referral)
    client = dev_env.client
    referral_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    start = StartReferral(
        referral_id=referral_id,
        request=TypeAdapter(ReferralCreate).validate_python(mediation_body()),
        received_on=london_date(now),
        created_at=now,
        actor="back-office",
        request_hash="h",
        policy=tr.Policy(),
    )
    worker = build_worker(
        client, task_queue=task_queue, activities=activities, max_cached_workflows=0
    )
    # A projection that cannot be retried safely would retry forever: fail instead of hanging.
    async with worker, asyncio.timeout(90):
        handle = await client.start_workflow(
            ReferralWorkflow.run, start, id=workflow_id(referral_id), task_queue=task_queue
        )
        for name, command in (
            ("information_session", InformationSession()),
            ("decline_mediation", DeclineMediation()),
        ):
            await handle.execute_update(
                name, CommandEnvelope(actor="back-office", command=command), result_type=Referral
            )
        await handle.result()

    sent, attempts = await projections_sent(client, handle.id)
    expected = [
        (e.seq, e.type, e.on, e.actor, e.data) for projection in sent for e in projection.events
    ]
    assert len(sent) >= 3  # created, information session, declined
    assert flaky.crashes == len(sent)  # every projection crashed once after its commit ...
    assert attempts == [2] * len(sent)  # ... and Temporal retried it

    async with db.sessionmaker() as session:
        timeline = await listing.timeline(session, referral_id)
    got = [(e["seq"], e["type"], e["occurred_on"], e["actor"], e["data"]) for e in timeline]
    assert got == expected
    assert [e[0] for e in got] == list(range(1, len(got) + 1))
    types = [e[1] for e in got]
    assert types[0] == "referral.created"
    assert types.count("certificate.issued") == types.count("referral.closed") == 1
    assert types.index("mediation.declined") < types.index("certificate.issued")
    assert types.index("certificate.issued") < types.index("referral.closed")
    actors = {e[1]: e[3] for e in got}
    assert actors["mediation.declined"] == "back-office"
    assert actors["certificate.issued"] == "system"
