"""``kill -9`` of the Temporal dev server (persisted to a file), restarted on the same store."""

from __future__ import annotations

import asyncio
import signal
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import TimeSkipper

from models.messages import workflow_id
from tests.conftest import Database
from tests.e2e.helpers import command, create, today
from tests.factories import mediation_body
from tests.faults.conftest import (
    Process,
    TemporalServer,
    fault_settings,
    in_process_service,
    ok,
    wait_until,
)

# Per-workflow time skipping (experimental in server 1.32): lets a timer that was started
# before the restart fire after it without waiting 31 real days.
TIME_SKIPPING = ["--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true"]


async def history(handle: WorkflowHandle[Any, Any]) -> list[tuple[int, int]]:
    return [(e.event_id, e.event_type) async for e in handle.fetch_history_events()]


async def open_timers(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """Ids of the timers started and neither fired nor cancelled."""
    started: dict[int, str] = {}
    ended: set[int] = set()
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            started[e.event_id] = e.timer_started_event_attributes.timer_id
        elif e.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            ended.add(e.timer_fired_event_attributes.started_event_id)
        elif e.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
            ended.add(e.timer_canceled_event_attributes.started_event_id)
    return [timer for event_id, timer in started.items() if event_id not in ended]


async def test_kill_9_temporal_server_and_restart_on_its_store_loses_nothing_and_timers_fire(
    fault_db: Database, tmp_path: Path, processes: list[Process]
) -> None:
    """The dev server persists to a file; it is killed with SIGKILL while referral A sleeps on
    its day timer (arranging a meeting, its 30-day date tomorrow) and referral B waits for its
    information session, then started again on the same port and file.

    Proven: both workflows are still running with their histories unchanged event for event
    (A's timer started and not yet fired); the worker and the API carry on without a restart;
    B takes two commands after the restart and closes with its certificate, its read model and
    timeline complete (every event once). Then A's clock is fast-forwarded (per-workflow time
    skipping on the same restarted server, experimental in Temporal 1.32; the virtual clock is
    what ``workflow.now()`` reads): the timer started before the kill fires after it, and on
    the day after the 30-day date - not a day early or late - A gets its deemed certificate.
    What this does not prove: a timer firing by the wall clock after a real restart (that
    would take a real midnight); the server's own timer queue is what fires both.
    """
    server = TemporalServer(tmp_path / "temporal.db", tmp_path / "temporal.log", *TIME_SKIPPING)
    processes.append(server)
    server.start()
    await server.ready()
    settings = fault_settings(
        fault_db,
        tmp_path,
        server.target,
    )
    async with in_process_service(fault_db, settings) as (client, http):
        # A: mediation asked for 29 days ago, so its 30-day date is tomorrow (DL-03).
        asked = today() - timedelta(days=29)
        letter = asked - timedelta(days=10)
        decision = {"type": "refusal_to_assess", "letter_date": letter.isoformat()}
        a = await create(http, mediation_body(received_on=asked.isoformat(), decision=decision))
        arranging = await ok(
            await command(http, a["id"], "request-mediation", {"on": asked.isoformat()})
        )
        assert arranging["status"] == "arranging_meeting"
        assert arranging["certificate"] is None
        arrange_by = date.fromisoformat(
            arranging["deadlines"]["mediation_must_be_arranged_by"]["due_on"]
        )
        assert arrange_by == today() + timedelta(days=1)
        b = await create(http, mediation_body())
        handle_a = client.get_workflow_handle(workflow_id(a["id"]))
        handle_b = client.get_workflow_handle(workflow_id(b["id"]))

        async def settled(handle: WorkflowHandle[Any, Any]) -> bool:
            """Sleeping on its timer: nothing pending but the timer."""
            described = await handle.describe()
            raw = described.raw_description
            return (
                not raw.pending_activities
                and not raw.HasField("pending_workflow_task")
                and bool(await open_timers(handle))
            )

        await wait_until(lambda: settled(handle_a), "A asleep on its timer")
        await wait_until(lambda: settled(handle_b), "B asleep on its timer")
        before_a, before_b = await history(handle_a), await history(handle_b)
        timers_a = await open_timers(handle_a)

        server.kill()
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["temporal"].startswith("unreachable")
        server.start()
        await server.ready()
        await wait_until(lambda: _ready(http), "the API ready again without a restart", within=30)

        for handle, before in ((handle_a, before_a), (handle_b, before_b)):
            described = await handle.describe()
            assert described.status is WorkflowExecutionStatus.RUNNING
            assert await history(handle) == before  # nothing lost, nothing new
        assert await open_timers(handle_a) == timers_a

        # Commands after the restart: the worker and the API reconnected by themselves.
        await ok(await command(http, b["id"], "information-session"))
        closed = await ok(await command(http, b["id"], "decline-mediation"))
        assert closed["status"] == "closed"
        assert closed["certificate"]["issued_on"] == today().isoformat()
        await asyncio.wait_for(handle_b.result(), timeout=60)
        await _timeline_complete(http, b["id"])
        read_b = await ok(await http.get(f"/v1/referrals/{b['id']}"))
        assert read_b["status"] == "closed"
        assert read_b["certificate"]["number"] == closed["certificate"]["number"]

        # A's timer, started before the kill, fires after it: skip A's clock two days on.
        skipper = TimeSkipper(client)
        assert await skipper.fast_forward(handle_a, timedelta(days=2, hours=1))

        async def deemed() -> bool:
            read = await ok(await http.get(f"/v1/referrals/{a['id']}"))
            return read["certificate"] is not None

        await wait_until(deemed, "A's deemed certificate", within=60)
        read_a = await ok(await http.get(f"/v1/referrals/{a['id']}"))
        certificate = read_a["certificate"]
        assert certificate["kind"] == "deemed"
        assert certificate["issued_on"] == (arrange_by + timedelta(days=1)).isoformat()
        assert read_a["deadlines"]["mediation_must_be_arranged_by"]["state"] == "breached"
        assert read_a["status"] == "arranging_meeting"  # stays open for a later meeting
        fired = [
            e
            async for e in handle_a.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED
        ]
        assert any(e.timer_fired_event_attributes.timer_id in timers_a for e in fired), (
            "the timer started before the restart fired after it"
        )
        await _timeline_complete(http, a["id"])
    server.signal(signal.SIGTERM)


async def _ready(http: Any) -> bool:
    response = await http.get("/readyz")
    return bool(response.status_code == 200)


async def _timeline_complete(http: Any, referral_id: str) -> None:
    """The timeline holds every event once, numbered 1..n with no gap."""
    events = (await ok(await http.get(f"/v1/referrals/{referral_id}/events")))["items"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
