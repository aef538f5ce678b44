"""A projection that crashes after committing is retried by Temporal: each event once, in order.

A real referral runs on the Temporal dev server with the real activities, except that the
projection (``project_referral``, a local activity since perf-v1) raises after its commit on
every first attempt (as if the worker died between the commit and reporting success). Temporal
retries it; the timeline must hold exactly the events the workflow sent, once each, in order.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities.records import RecordActivities
from models.domain import transitions as tr
from models.domain.clock import london_date
from models.domain.commands import DeclineMediation, InformationSession
from models.domain.referral import Referral, ReferralCreate
from models.messages import (
    PROJECT_REFERRAL,
    CommandEnvelope,
    Projected,
    Projection,
    StartReferral,
    workflow_id,
)
from models.store import listing
from tests.conftest import Database, make_settings
from tests.factories import mediation_body
from worker import build_activities, build_worker
from workflows.referral import ReferralWorkflow


class CrashAfterCommit:
    """``project_referral`` that commits, then fails its first attempt."""

    def __init__(self, records: RecordActivities) -> None:
        self._records = records
        self.attempts: list[tuple[int, Projection]] = []

    @activity.defn(name=PROJECT_REFERRAL)
    async def project_referral(self, projection: Projection) -> Projected:
        projected = await self._records.project_referral(projection)
        self.attempts.append((activity.info().attempt, projection))
        if activity.info().attempt == 1:
            raise RuntimeError("worker lost after the commit, before reporting success")
        return projected


async def test_timeline_has_each_event_once_in_order_when_projection_is_retried(
    db: Database, dev_env: WorkflowEnvironment
) -> None:
    task_queue = f"retry-{uuid.uuid4()}"
    settings = make_settings(database_url=db.url, task_queue=task_queue)
    flaky = CrashAfterCommit(RecordActivities(db.sessionmaker))
    activities: list[Any] = [
        a
        for a in build_activities(db.sessionmaker, settings)
        if getattr(a, "__name__", "") != PROJECT_REFERRAL
    ]
    activities.append(flaky.project_referral)
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

    sent = [projection for attempt, projection in flaky.attempts if attempt == 1]
    retried = [projection for attempt, projection in flaky.attempts if attempt == 2]
    expected = [
        (e.seq, e.type, e.on, e.actor, e.data) for projection in sent for e in projection.events
    ]
    assert len(sent) >= 3  # created, information session, declined
    # Every projection crashed once after its commit, and Temporal retried it, once.
    assert retried == sent
    assert [attempt for attempt, _ in flaky.attempts] == [1, 2] * len(sent)

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
