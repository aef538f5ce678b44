"""The lifecycle edges on the time-skipping server: a late entry's window, a breach the clock
decided and a fact later corrected, a closure by the clock reopened (or made final after its
correction window), a withdrawal while a meeting is booked, a cancellation requested as the
Web UI does it, a certificate after full agreement, and facts known at intake."""

from __future__ import annotations

import asyncio
from datetime import date, time, timedelta
from typing import Any

import pytest
from sqlmodel import col, select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from models.domain.referral import (
    CertificateKind,
    MeetingStatus,
    Outcome,
    PartyAnswer,
    Referral,
    Status,
)
from models.store.tables import MeetingReservationRow, NotificationRow, ReferralEventRow
from tests.factories import dr_body, mediation_body
from tests.workflow.conftest import Harness, london
from workflows.referral import ReferralWorkflow

pytestmark = pytest.mark.timeskip

Handle = WorkflowHandle[ReferralWorkflow, Any]


async def weekday_morning(harness: Harness) -> date:
    day = (await harness.now()).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    await harness.advance_to(london(day, time(9)))
    return day


async def timeline(harness: Harness, referral_id: str) -> list[ReferralEventRow]:
    async with harness.db.sessionmaker() as session:
        rows = await session.exec(
            select(ReferralEventRow)
            .where(col(ReferralEventRow.referral_id) == referral_id)
            .order_by(col(ReferralEventRow.seq))
        )
        return list(rows.all())


async def notified(
    harness: Harness, referral_id: str, template: str, *, expect: bool = True
) -> list[str]:
    """Who was sent ``template`` (the outbox); notices go out after the command answers, so
    this waits for the first ones (up to 20 s) unless none are expected."""
    deadline = asyncio.get_running_loop().time() + (20 if expect else 0)
    while True:
        async with harness.db.sessionmaker() as session:
            rows = await session.exec(
                select(NotificationRow.recipient).where(
                    col(NotificationRow.referral_id) == referral_id,
                    col(NotificationRow.template) == template,
                )
            )
            found = sorted(rows.all())
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def reservation_active(harness: Harness, referral_id: str) -> bool:
    async with harness.db.sessionmaker() as session:
        (row,) = (
            await session.exec(
                select(MeetingReservationRow).where(
                    col(MeetingReservationRow.referral_id) == referral_id
                )
            )
        ).all()
        return row.active


async def execution_status(harness: Harness, handle: Handle) -> WorkflowExecutionStatus:
    """Raw describe: the Java test server's search attributes trip the SDK's decoder."""
    described = await harness.client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=harness.client.namespace,
            execution=WorkflowExecution(workflow_id=handle.id),
        )
    )
    return WorkflowExecutionStatus(described.workflow_execution_info.status)


async def booked(harness: Harness, handle: Handle, day: date) -> Referral:
    await harness.send(handle, "request_mediation")
    return await harness.send(
        handle,
        "book_meeting",
        mediator_id=harness.registry["mediator"],
        starts_at=london(day + timedelta(days=14), time(10)).isoformat(),
    )


async def test_late_dr_entry_gives_the_parties_their_window_from_today(harness: Harness) -> None:
    today = await weekday_morning(harness)
    handle = await harness.start(dr_body(), received_on=today - timedelta(days=26))
    opened = await harness.state(handle)
    assert opened.status is Status.AWAITING_PARTY_RESPONSES
    assert opened.parties_contacted_on == today
    window = opened.deadlines["party_responses_due_by"].due_on
    assert window >= today + timedelta(days=14)  # 10 working days from today, not from receipt
    assert opened.deadlines["referral_actioned_by"].breached  # DL-13 runs from receipt
    await harness.send(handle, "party_response", party_id="school", answer="accepted", on=today)
    await harness.advance_to(london(window + timedelta(days=1), time(0, 0, 5)))
    settled = await harness.wait_for(
        handle, lambda r: r is not None and r.status is not Status.AWAITING_PARTY_RESPONSES
    )
    assert settled is not None
    assert settled.status is Status.ARRANGING_MEETING
    la = settled.party("la")
    assert la is not None
    assert (la.answer, la.answered_on) == (PartyAnswer.NO_RESPONSE, window + timedelta(days=1))
    await harness.send(handle, "withdraw")
    await harness.finish(handle, "dr_late_entry_window_runs_from_contact")


async def test_breach_decided_by_the_clock_is_corrected_when_the_fact_arrives(
    harness: Harness,
) -> None:
    today = await weekday_morning(harness)
    body = mediation_body(decision={"type": "refusal_to_assess", "letter_date": today.isoformat()})
    handle = await harness.start(body, received_on=today)
    due = (await harness.state(handle)).deadlines["referral_actioned_by"].due_on
    await harness.advance_to(london(due + timedelta(days=2), time(9)))
    breached = await harness.wait_for(
        handle, lambda r: r is not None and r.deadlines["referral_actioned_by"].breached
    )
    assert breached is not None
    assert breached.breached
    corrected = await harness.send(handle, "action", on=due)  # a call on the day, noted late
    deadline = corrected.deadlines["referral_actioned_by"]
    assert (deadline.met_on, deadline.breached) == (due, False)
    assert not corrected.breached
    events = [(e.type, e.data.get("corrected")) for e in await timeline(harness, corrected.id)]
    breach = events.index(("deadline.breached", None))
    assert events.index(("deadline.met", True)) > breach
    await harness.send(handle, "withdraw")
    await harness.finish(handle, "mediation_breach_corrected_by_a_fact_dated_in_time")


async def test_clock_closure_reopens_when_an_answer_given_in_time_is_recorded(
    harness: Harness,
) -> None:
    today = await weekday_morning(harness)
    handle = await harness.start(dr_body(), received_on=today)
    window = (await harness.state(handle)).deadlines["party_responses_due_by"].due_on
    await harness.advance_to(london(window + timedelta(days=3), time(9)))
    closed = await harness.wait_for(handle, lambda r: r is not None and r.closed)
    assert closed is not None
    assert closed.outcome is Outcome.NO_RESPONSE
    # Closed in the read model, but the workflow stays alive for the correction window.
    assert await execution_status(harness, handle) is WorkflowExecutionStatus.RUNNING
    reopened = await harness.send(
        handle, "party_response", party_id="school", answer="accepted", on=window
    )
    assert reopened.status is Status.ARRANGING_MEETING
    assert reopened.outcome is None
    assert reopened.closed_on is None
    types = [e.type for e in await timeline(harness, reopened.id)]
    assert types.index("referral.closed") < types.index("referral.reopened")
    assert await notified(harness, reopened.id, "dr_not_going_ahead") == ["family"]
    assert await notified(harness, reopened.id, "referral_reopened") == ["family"]
    assert await notified(harness, reopened.id, "dr_going_ahead") == ["school"]
    await harness.send(handle, "withdraw")
    await harness.finish(handle, "dr_closure_by_the_clock_reopened_by_an_answer_given_in_time")


async def test_clock_closure_becomes_final_and_the_workflow_ends_after_its_window(
    harness: Harness,
) -> None:
    today = await weekday_morning(harness)
    handle = await harness.start(dr_body(), received_on=today)
    window = (await harness.state(handle)).deadlines["party_responses_due_by"].due_on
    await harness.advance_to(london(window + timedelta(days=1), time(0, 0, 5)))
    closed = await harness.wait_for(handle, lambda r: r is not None and r.closed)
    assert closed is not None
    assert closed.clock_closure is not None
    final_day = closed.clock_closure.reopen_until + timedelta(days=1)
    await harness.finish(handle, "dr_nobody_answered_closure_final_after_its_correction_window")
    result = await handle.result()
    assert result.outcome == "no_response"
    assert (await harness.now()).date() >= final_day
    final = [e for e in await timeline(harness, closed.id) if e.type == "referral.closure_final"]
    assert [e.occurred_on for e in final] == [final_day]


async def test_withdraw_while_booked_releases_the_slot_and_tells_the_mediator(
    harness: Harness,
) -> None:
    today = await weekday_morning(harness)
    handle = await harness.start(mediation_body(), received_on=today)
    referral_id = (await booked(harness, handle, today)).id
    assert await reservation_active(harness, referral_id)
    withdrawn = await harness.send(handle, "withdraw")
    assert withdrawn.status is Status.CLOSED
    assert withdrawn.meetings[-1].status is MeetingStatus.CANCELLED
    assert not await reservation_active(harness, referral_id)
    told = await notified(harness, withdrawn.id, "meeting_cancelled")
    assert told == sorted(["family", "la", "senco", "mediator", "supporter"])
    await harness.finish(handle, "mediation_withdrawn_while_booked_releases_the_meeting")


async def test_cancellation_requested_as_the_web_ui_does_closes_the_case(
    harness: Harness,
) -> None:
    today = await weekday_morning(harness)
    handle = await harness.start(mediation_body(), received_on=today)
    referral_id = (await booked(harness, handle, today)).id
    await handle.cancel()  # the Web UI's "Request Cancellation"
    result = await handle.result()
    assert result.outcome == "cancelled"
    assert await execution_status(harness, handle) is WorkflowExecutionStatus.COMPLETED
    closed = await harness.state(handle)
    assert (closed.status, closed.outcome) == (Status.CLOSED, Outcome.CANCELLED)
    assert closed.meetings[-1].status is MeetingStatus.CANCELLED
    assert not await reservation_active(harness, referral_id)
    (cancelled,) = [
        e for e in await timeline(harness, referral_id) if e.type == "referral.cancelled"
    ]
    assert cancelled.actor.startswith("operator (")
    assert await notified(harness, referral_id, "referral_cancelled") == ["family", "la", "senco"]
    await harness.finish(handle, "mediation_operator_cancellation_closes_and_releases")


async def test_full_agreement_gets_a_certificate_and_its_actions_are_tracked(
    harness: Harness,
) -> None:
    today = await weekday_morning(harness)
    handle = await harness.start(mediation_body(), received_on=today)
    await harness.send(handle, "request_mediation")
    await harness.send(
        handle,
        "book_meeting",
        mediator_id=harness.registry["mediator"],
        starts_at=london(today, time(18)).isoformat(),
        short_notice_consented=True,
    )
    await harness.advance_to(london(today, time(21)))
    action = {"id": "amend", "description": "Amend", "owner": "la", "kind": "amend_plan"}
    agreed = await harness.send(
        handle, "record_meeting", outcome="agreement", agreed_actions=[action]
    )
    (certificate,) = agreed.certificates
    assert certificate.kind is CertificateKind.AFTER_MEDIATION
    assert certificate.issued_on == today
    assert agreed.deadlines["certificate_due_by"].rule == "DL-07"
    await harness.send(handle, "sign_agreement", signatories=["family", "la"])
    done = await harness.send(handle, "complete_action", action_id="amend")
    assert (done.status, done.outcome) == (Status.CLOSED, Outcome.AGREEMENT)
    await harness.finish(handle, "mediation_full_agreement_gets_a_certificate_and_actions_tracked")


async def test_intake_with_known_facts_starts_the_referral_in_its_true_state(
    harness: Harness,
) -> None:
    today = await weekday_morning(harness)
    received = today - timedelta(days=7)
    facts = [
        {
            "command": "party_response",
            "party_id": "la",
            "answer": "accepted",
            "on": today.isoformat(),
        },
        {"command": "action", "on": (received + timedelta(days=1)).isoformat()},
    ]
    body = dr_body(facts=facts, parties_contacted_on=received.isoformat())
    handle = await harness.start(body, received_on=received)
    opened = await harness.state(handle)
    assert opened.status is Status.AWAITING_PARTY_RESPONSES
    assert opened.actioned_on == received + timedelta(days=1)
    assert opened.party("la").answer is PartyAnswer.ACCEPTED  # type: ignore[union-attr]
    # Only the party still to answer is asked (the first letter is a reminder: 5 working days
    # since they were asked have passed).
    asked = await notified(harness, opened.id, "dr_consent_reminder")
    assert asked == ["school"]
    assert await notified(harness, opened.id, "dr_consent_request", expect=False) == []
    await harness.send(handle, "withdraw")
    await harness.finish(handle, "dr_intake_with_known_facts_starts_in_its_true_state")
