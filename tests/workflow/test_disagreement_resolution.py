"""Disagreement Resolution on the time-skipping server: consent, silence, reminders, outcomes."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

import pytest
from sqlmodel import col, select
from temporalio.client import WorkflowHandle

from models.domain.referral import Outcome, PartyAnswer, Referral, Status
from models.store.tables import NotificationRow
from tests.factories import dr_body
from tests.workflow.conftest import Harness, first_future, london
from workflows.referral import ReferralWorkflow

pytestmark = pytest.mark.timeskip


def answers(referral: Referral) -> dict[str, PartyAnswer]:
    return {p.id: p.answer for p in referral.parties}


async def notified(harness: Harness, referral_id: str, template: str) -> list[str]:
    async with harness.db.sessionmaker() as session:
        rows = await session.exec(
            select(NotificationRow.recipient).where(
                col(NotificationRow.referral_id) == referral_id,
                col(NotificationRow.template) == template,
            )
        )
        return sorted(rows.all())


async def start_dr(harness: Harness) -> WorkflowHandle[ReferralWorkflow, Any]:
    today = (await harness.now()).date()
    while today.weekday() >= 5:
        today += timedelta(days=1)
    await harness.advance_to(london(today, time(9)))
    return await harness.start(dr_body(), received_on=today)


async def test_all_parties_accept_then_meeting_agreement_and_actions(harness: Harness) -> None:
    handle = await start_dr(harness)
    opened = await harness.state(handle)
    assert opened.status is Status.AWAITING_PARTY_RESPONSES
    assert await harness.wait_for(handle, lambda r: True) is not None
    await harness.send(handle, "party_response", party_id="school", answer="accepted")
    both = await harness.send(handle, "party_response", party_id="la", answer="accepted")
    assert both.status is Status.ARRANGING_MEETING
    assert both.deadlines["party_responses_due_by"].met_on is not None
    assert both.certificates == ()

    day = both.received_on + timedelta(days=14)
    booked = await harness.send(
        handle,
        "book_meeting",
        mediator_id=harness.registry["mediator"],
        starts_at=london(day, time(10)).isoformat(),
    )
    assert set(booked.meetings[0].attendees) == {"school", "la"}
    await harness.advance_to(london(day, time(13)))
    due = day + timedelta(days=21)
    recorded = await harness.send(
        handle,
        "record_meeting",
        outcome="agreement",
        settled_issues=["Classroom support plan"],
        agreed_actions=[
            {
                "id": "plan",
                "description": "Write support plan",
                "owner": "school",
                "kind": "agreed_date",
                "due_on": due.isoformat(),
            },
        ],
    )
    assert recorded.status is Status.AGREEMENT_AWAITING_SIGNATURE
    signed = await harness.send(handle, "sign_agreement", signatories=["family", "school", "la"])
    assert signed.agreement is not None
    assert signed.agreement.actions[0].due_on == due
    await harness.advance_to(london(due + timedelta(days=1), time(0, 0, 5)))
    late = await harness.wait_for(
        handle,
        lambda r: r is not None and r.agreement is not None and r.agreement.actions[0].breached,
    )
    assert late is not None
    assert late.agreement is not None
    assert late.agreement.actions[0].reminded_on is not None
    assert await notified(harness, late.id, "action_overdue") == ["family", "school"]
    done = await harness.send(handle, "complete_action", action_id="plan")
    assert done.status is Status.CLOSED
    assert done.outcome is Outcome.AGREEMENT
    assert done.certificates == ()
    await harness.finish(handle, "dr_all_parties_accept_then_meeting_agreement_and_actions")


async def test_one_accepts_one_declines_meeting_goes_ahead_with_the_willing(
    harness: Harness,
) -> None:
    handle = await start_dr(harness)
    await harness.send(handle, "party_response", party_id="school", answer="accepted")
    referral = await harness.send(
        handle, "party_response", party_id="la", answer="declined", reason="Not the right forum"
    )
    assert referral.status is Status.ARRANGING_MEETING
    assert answers(referral) == {"school": PartyAnswer.ACCEPTED, "la": PartyAnswer.DECLINED}
    assert referral.party("la").reason == "Not the right forum"  # type: ignore[union-attr]
    booked = await harness.send(
        handle,
        "book_meeting",
        mediator_id=harness.registry["mediator"],
        starts_at=london(referral.received_on + timedelta(days=14), time(10)).isoformat(),
    )
    assert booked.meetings[0].attendees == ("school",)
    closed = await harness.send(handle, "withdraw")
    assert closed.outcome is Outcome.WITHDRAWN
    await harness.finish(handle, "dr_one_accepts_one_declines_meeting_goes_ahead_with_the_willing")


async def test_all_decline_closes_and_tells_the_parent(harness: Harness) -> None:
    handle = await start_dr(harness)
    await harness.send(
        handle, "party_response", party_id="school", answer="declined", reason="Busy"
    )
    closed = await harness.send(
        handle, "party_response", party_id="la", answer="declined", reason="No"
    )
    assert closed.status is Status.CLOSED
    assert closed.outcome is Outcome.PARTIES_DECLINED
    assert closed.closure_reason == "every party declined"
    await harness.finish(handle, "dr_all_decline_closes_and_tells_the_parent")
    assert await notified(harness, closed.id, "dr_not_going_ahead") == ["family"]


# Received on the Friday before the spring bank holiday: reminder after 5 working days,
# silence counts as not taking part after 10 (both skip the bank holiday Monday).
CONSENT = {
    2027: {
        "starts": date(2027, 5, 28),
        "reminder": date(2027, 6, 7),
        "deadline": date(2027, 6, 14),
    },
    2028: {
        "starts": date(2028, 5, 26),
        "reminder": date(2028, 6, 5),
        "deadline": date(2028, 6, 12),
    },
    2029: {
        "starts": date(2029, 5, 25),
        "reminder": date(2029, 6, 4),
        "deadline": date(2029, 6, 11),
    },
}


async def test_silent_party_is_reminded_then_counts_as_not_taking_part(harness: Harness) -> None:
    s = CONSENT[first_future(CONSENT, (await harness.now()).date())]
    await harness.advance_to(london(s["starts"], time(10)))
    handle = await harness.start(dr_body(), received_on=s["starts"])
    opened = await harness.state(handle)
    assert opened.deadlines["party_responses_due_by"].due_on == s["deadline"]
    await harness.send(handle, "party_response", party_id="school", answer="accepted")

    await harness.advance_to(london(s["reminder"] - timedelta(days=1), time(23, 59)))
    assert (await harness.state(handle)).party("la").reminded_on is None  # type: ignore[union-attr]
    await harness.advance_to(london(s["reminder"], time(0, 0, 5)))
    reminded = await harness.wait_for(
        handle,
        lambda r: r is not None and r.party("la").reminded_on is not None,  # type: ignore[union-attr]
    )
    assert reminded is not None
    assert reminded.party("la").reminded_on == s["reminder"]  # type: ignore[union-attr]
    assert reminded.party("school").reminded_on is None  # type: ignore[union-attr]

    await harness.advance_to(london(s["deadline"], time(23, 59)))
    assert (await harness.state(handle)).status is Status.AWAITING_PARTY_RESPONSES
    await harness.advance_to(london(s["deadline"] + timedelta(days=1), time(0, 0, 5)))
    settled = await harness.wait_for(
        handle, lambda r: r is not None and r.status is not Status.AWAITING_PARTY_RESPONSES
    )
    assert settled is not None
    assert settled.status is Status.ARRANGING_MEETING
    assert answers(settled) == {"school": PartyAnswer.ACCEPTED, "la": PartyAnswer.NO_RESPONSE}
    assert await notified(harness, settled.id, "dr_consent_reminder") == ["la"]
    await harness.send(handle, "withdraw")
    await harness.finish(handle, "dr_silent_party_is_reminded_then_counts_as_not_taking_part")


async def test_everyone_silent_closes_at_the_deadline(harness: Harness) -> None:
    handle = await start_dr(harness)
    opened = await harness.state(handle)
    deadline = opened.deadlines["party_responses_due_by"].due_on
    await harness.advance_to(london(deadline + timedelta(days=1), time(0, 0, 5)))
    closed = await harness.wait_for(handle, lambda r: r is not None and r.closed)
    assert closed is not None
    # Nobody answered: that is not "declined" (outcome no_response), dated the day after.
    assert closed.outcome is Outcome.NO_RESPONSE
    assert closed.closure_reason == f"nobody answered by {deadline.isoformat()}"
    assert closed.closed_on == deadline + timedelta(days=1)
    assert set(answers(closed).values()) == {PartyAnswer.NO_RESPONSE}
    await harness.finish(handle, "dr_everyone_silent_closes_at_the_deadline")


async def test_withdrawal_mid_consent_closes_and_tells_everyone(harness: Harness) -> None:
    handle = await start_dr(harness)
    await harness.send(handle, "party_response", party_id="school", answer="accepted")
    closed = await harness.send(handle, "withdraw", reason="Resolved informally")
    assert closed.status is Status.CLOSED
    assert closed.outcome is Outcome.WITHDRAWN
    assert closed.deadlines["party_responses_due_by"].waived
    await harness.finish(handle, "dr_withdrawal_mid_consent_closes_and_tells_everyone")
    assert await notified(harness, closed.id, "referral_withdrawn") == ["family", "la", "school"]
