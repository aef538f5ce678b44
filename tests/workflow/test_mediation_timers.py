"""Mediation timers on the time-skipping server: each date hand-checked against RULES.md §3.

Scenario years are listed with their dates worked out by hand (never by the code under
test); each test takes the first year still ahead of the server clock.
"""

from __future__ import annotations

import asyncio
from datetime import date, time, timedelta

import pytest
from sqlmodel import col, select

from models.domain.referral import CertificateKind, Outcome, Status
from models.store.tables import NotificationRow
from tests.factories import mediation_body
from tests.workflow.conftest import Harness, first_future, london

pytestmark = pytest.mark.timeskip

# LA told on 27 Nov: the 30 days end on 27 Dec; the deemed certificate issues at the start
# of 28 Dec; DL-08 = 27 Dec + 3 working days; decision 10 Nov, so the appeal deadline is
# the certificate limb (28 Jan), rolled to a working day.
CHRISTMAS = {
    2026: {  # 28 Dec substitute Boxing Day (RULES.md W5)
        "ahead": date(2026, 12, 27),
        "told": date(2026, 11, 27),
        "day30": date(2026, 12, 27),
        "deemed_due": date(2026, 12, 31),
        "appeal": date(2027, 1, 28),
        "meeting": date(2027, 1, 11),
    },
    2027: {  # 27 and 28 Dec both substitutes
        "ahead": date(2027, 12, 27),
        "told": date(2027, 11, 27),
        "day30": date(2027, 12, 27),
        "deemed_due": date(2027, 12, 31),
        "appeal": date(2028, 1, 28),
        "meeting": date(2028, 1, 10),
    },
    2028: {  # 25/26 Dec Mon/Tue, 1 Jan 2029 Mon; 28 Jan 2029 is a Sunday
        "ahead": date(2028, 12, 27),
        "told": date(2028, 11, 27),
        "day30": date(2028, 12, 27),
        "deemed_due": date(2029, 1, 2),
        "appeal": date(2029, 1, 29),
        "meeting": date(2029, 1, 15),
    },
}


async def test_no_meeting_in_30_days_issues_deemed_certificate_on_day_31(harness: Harness) -> None:
    today = (await harness.now()).date()
    s = CHRISTMAS[first_future({y: {"starts": v["ahead"]} for y, v in CHRISTMAS.items()}, today)]
    await harness.advance_to(london(s["told"], time(9)))
    body = mediation_body(
        decision={
            "type": "refusal_to_assess",
            "letter_date": date(s["told"].year, 11, 10).isoformat(),
        }
    )
    handle = await harness.start(body, received_on=s["told"])
    requested = await harness.send(handle, "request_mediation", on=s["told"])
    assert requested.deadlines["mediation_must_be_arranged_by"].due_on == s["day30"]
    assert requested.deadlines["deemed_certificate_due_by"].due_on == s["deemed_due"]

    # Last minute of day 30: nothing yet.
    await harness.advance_to(london(s["day30"], time(23, 59)))
    assert (await harness.state(handle)).certificates == ()

    # First second of day 31: the certificate, automatically; the case stays open.
    await harness.advance_to(london(s["day30"] + timedelta(days=1), time(0, 0, 5)))
    deemed = await harness.wait_for(handle, lambda r: r is not None and bool(r.certificates))
    assert deemed is not None
    certificate = deemed.certificates[0]
    assert certificate.kind is CertificateKind.DEEMED
    assert certificate.issued_on == s["day30"] + timedelta(days=1)
    assert certificate.due_on == s["deemed_due"]
    assert certificate.on_time
    assert certificate.appeal_deadline == s["appeal"]
    assert deemed.status is Status.ARRANGING_MEETING
    assert deemed.deadlines["mediation_must_be_arranged_by"].breached
    assert deemed.deadlines["deemed_certificate_due_by"].met_on == certificate.issued_on

    # A meeting can still be booked and held later: a second certificate, same appeal date.
    booked = await harness.send(
        handle,
        "book_meeting",
        mediator_id=harness.registry["mediator"],
        starts_at=london(s["meeting"], time(10)).isoformat(),
    )
    assert booked.status is Status.MEETING_BOOKED
    await harness.advance_to(london(s["meeting"], time(15)))
    held = await harness.send(handle, "record_meeting", outcome="no_agreement")
    assert held.status is Status.CLOSED
    assert held.outcome is Outcome.NO_AGREEMENT
    assert [c.kind for c in held.certificates] == [
        CertificateKind.DEEMED,
        CertificateKind.AFTER_MEDIATION,
    ]
    assert held.certificates[1].issued_on == s["meeting"]
    assert held.appeal_deadline == s["appeal"]  # from the first certificate (RULES.md A4)
    await harness.finish(
        handle, "mediation_no_meeting_in_30_days_issues_deemed_certificate_on_day_31"
    )


# Decline told on the Thursday before Good Friday: Good Friday and Easter Monday are skipped.
EASTER = {
    2027: {"starts": date(2027, 3, 25), "due": date(2027, 4, 1)},
    2028: {"starts": date(2028, 4, 13), "due": date(2028, 4, 20)},
    2029: {"starts": date(2029, 3, 29), "due": date(2029, 4, 5)},  # GF 30 Mar, EM 2 Apr
}


async def test_certificate_after_decline_is_due_three_working_days_over_easter(
    harness: Harness,
) -> None:
    s = EASTER[first_future(EASTER, (await harness.now()).date())]
    await harness.advance_to(london(s["starts"], time(11)))
    body = mediation_body(
        decision={
            "type": "refusal_to_issue",
            "letter_date": (s["starts"] - timedelta(days=20)).isoformat(),
        }
    )
    handle = await harness.start(body, received_on=s["starts"])
    await harness.send(handle, "information_session", on=s["starts"])
    declined = await harness.send(handle, "decline_mediation", on=s["starts"])
    assert declined.deadlines["certificate_due_by"].due_on == s["due"]
    assert declined.deadlines["certificate_due_by"].rule == "DL-02"
    assert declined.certificates[0].issued_on == s["starts"]
    assert declined.outcome is Outcome.DECLINED_MEDIATION
    await harness.finish(
        handle, "mediation_certificate_after_decline_is_due_three_working_days_over_easter"
    )


# Referral received on the Friday before the spring bank holiday: 5 working days (DL-13).
SPRING = {
    2027: {"starts": date(2027, 5, 28), "due": date(2027, 6, 7)},  # BH Mon 31 May
    2028: {"starts": date(2028, 5, 26), "due": date(2028, 6, 5)},  # BH Mon 29 May
    2029: {"starts": date(2029, 5, 25), "due": date(2029, 6, 4)},  # BH Mon 28 May
}


async def test_missed_referral_action_is_marked_breached_and_blocks_nothing(
    harness: Harness,
) -> None:
    s = SPRING[first_future(SPRING, (await harness.now()).date())]
    await harness.advance_to(london(s["starts"], time(16)))
    handle = await harness.start(
        mediation_body(
            decision={
                "type": "cease_to_maintain",
                "letter_date": (s["starts"] - timedelta(days=7)).isoformat(),
            }
        ),
        received_on=s["starts"],
    )
    referral = await harness.state(handle)
    assert referral.deadlines["referral_actioned_by"].due_on == s["due"]

    await harness.advance_to(london(s["due"], time(23, 59)))
    assert not (await harness.state(handle)).deadlines["referral_actioned_by"].breached
    await harness.advance_to(london(s["due"] + timedelta(days=1), time(0, 0, 5)))
    breached = await harness.wait_for(
        handle, lambda r: r is not None and r.deadlines["referral_actioned_by"].breached
    )
    assert breached is not None
    assert breached.status is Status.AWAITING_INFORMATION_SESSION
    # Service level only: the case carries on.
    after = await harness.send(handle, "information_session")
    assert after.status is Status.AWAITING_FAMILY_DECISION
    late = await harness.send(handle, "action")
    assert late.deadlines["referral_actioned_by"].breached
    await harness.send(handle, "withdraw")
    await harness.finish(
        handle, "mediation_missed_referral_action_is_marked_breached_and_blocks_nothing"
    )


# Agreement signed on 1 Feb: amend plan 5 weeks (reg 44(2)(e)), non-appealable 2 weeks
# (reg 42(3)); the reminder goes 3 working days before the due date.
AGREEMENT = {
    2027: {
        "starts": date(2027, 1, 18),
        "signed": date(2027, 2, 1),
        "amend_due": date(2027, 3, 8),
        "reminder": date(2027, 3, 3),
        "non_appealable_due": date(2027, 2, 15),
    },
    2028: {
        "starts": date(2028, 1, 18),
        "signed": date(2028, 2, 1),
        "amend_due": date(2028, 3, 7),
        "reminder": date(2028, 3, 2),
        "non_appealable_due": date(2028, 2, 15),
    },
}


async def test_agreed_actions_get_legal_deadlines_reminders_and_breaches(harness: Harness) -> None:
    s = AGREEMENT[first_future(AGREEMENT, (await harness.now()).date())]
    await harness.advance_to(london(s["starts"], time(10)))
    body = mediation_body(
        decision={
            "type": "plan_contents",
            "letter_date": (s["starts"] - timedelta(days=10)).isoformat(),
            "sections": ["B", "F"],
        }
    )
    handle = await harness.start(body, received_on=s["starts"])
    await harness.send(handle, "request_mediation")
    await harness.send(
        handle,
        "book_meeting",
        mediator_id=harness.registry["mediator"],
        starts_at=london(s["signed"], time(10)).isoformat(),
        venue={"kind": "in_person", "venue_id": harness.registry["venue"]},
    )
    await harness.advance_to(london(s["signed"], time(14)))
    recorded = await harness.send(
        handle,
        "record_meeting",
        outcome="agreement",
        settled_issues=["Sections B and F to be amended"],
        agreed_actions=[
            {
                "id": "amend",
                "description": "Issue amended plan",
                "owner": "la",
                "kind": "amend_plan",
            },
            {
                "id": "review",
                "description": "Speech therapy review",
                "owner": "la",
                "kind": "non_appealable",
            },
        ],
    )
    assert recorded.status is Status.AGREEMENT_AWAITING_SIGNATURE
    # A16: a certificate after every concluded mediation, full agreement included (DL-07,
    # within 3 working days); the agreed actions are still tracked below.
    (certificate,) = recorded.certificates
    assert certificate.kind is CertificateKind.AFTER_MEDIATION
    assert certificate.issued_on == s["signed"]
    signed = await harness.send(handle, "sign_agreement", signatories=["family", "la"])
    assert signed.agreement is not None
    due = {a.id: a.due_on for a in signed.agreement.actions}
    assert due == {"amend": s["amend_due"], "review": s["non_appealable_due"]}

    await harness.send(handle, "complete_action", action_id="review")
    await harness.advance_to(london(s["reminder"], time(0, 0, 5)))
    reminded = await harness.wait_for(
        handle,
        lambda r: (
            r is not None
            and r.agreement is not None
            and r.agreement.actions[0].reminded_on is not None
        ),
    )
    assert reminded is not None
    assert reminded.agreement is not None
    assert reminded.agreement.actions[0].reminded_on == s["reminder"]
    assert not reminded.agreement.actions[0].breached

    await harness.advance_to(london(s["amend_due"] + timedelta(days=1), time(0, 0, 5)))
    late = await harness.wait_for(
        handle,
        lambda r: r is not None and r.agreement is not None and r.agreement.actions[0].breached,
    )
    assert late is not None
    done = await harness.send(handle, "complete_action", action_id="amend")
    assert done.status is Status.CLOSED
    assert done.outcome is Outcome.AGREEMENT
    await harness.finish(
        handle, "mediation_agreed_actions_get_legal_deadlines_reminders_and_breaches"
    )


# Health care in issue, told on the Thursday before the early-May bank holiday: the ICB must
# be told within 3 working days (DL-04); the meeting is held on the Friday before the spring
# bank holiday, so the certificate after a partial agreement is due 3 working days later.
HEALTH = {
    2027: {
        "starts": date(2027, 4, 29),
        "icb_due": date(2027, 5, 5),
        "meeting": date(2027, 5, 28),
        "cert_due": date(2027, 6, 3),
    },
    2028: {
        "starts": date(2028, 4, 27),
        "icb_due": date(2028, 5, 3),
        "meeting": date(2028, 5, 26),
        "cert_due": date(2028, 6, 1),
    },
}
ICB = {
    "id": "icb",
    "kind": "icb",
    "organisation": "NHS Hertfordshire and West Essex ICB",
    "contact": {"name": "ICB SEND lead", "email": "send@icb.example.nhs.uk"},
}


async def notified(harness: Harness, referral_id: str) -> dict[str, set[str]]:
    async with harness.db.sessionmaker() as session:
        rows = (
            await session.exec(
                select(NotificationRow).where(col(NotificationRow.referral_id) == referral_id)
            )
        ).all()
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row.template, set()).add(row.recipient)
    return found


async def test_health_in_issue_icb_told_parties_invited_rebooked_and_partial_agreement(
    harness: Harness,
) -> None:
    s = HEALTH[first_future(HEALTH, (await harness.now()).date())]
    await harness.advance_to(london(s["starts"], time(10)))
    body = mediation_body(
        decision={
            "type": "plan_contents",
            "letter_date": (s["starts"] - timedelta(days=14)).isoformat(),
            "sections": ["F", "G"],
        },
        health_care_in_issue=True,
        health_provision_sought="Speech and language therapy, weekly",
        icbs=[ICB],
    )
    handle = await harness.start(body, received_on=s["starts"])
    requested = await harness.send(handle, "request_mediation")
    dl04 = requested.deadlines["la_must_notify_icb_by"]
    assert (dl04.due_on, dl04.met_on) == (s["icb_due"], s["starts"])
    # The LA (decision maker required), the ICB, the SENCO the family suggested, the supporter.
    expected = {
        "mediation_requested_la": {"la"},
        "icb_notification": {"icb"},
        "invitation_to_take_part": {"senco"},
        "supporter_welcome": {"supporter"},
    }

    async def all_told() -> bool:
        found = await notified(harness, requested.id)
        return all(found.get(t, set()) >= r for t, r in expected.items())

    for _ in range(200):
        if await all_told():
            break
        await asyncio.sleep(0.05)
    assert await all_told()

    booking = {
        "mediator_id": harness.registry["mediator"],
        "starts_at": london(s["meeting"], time(10)).isoformat(),
    }
    first = await harness.send(handle, "book_meeting", **booking)
    assert set(first.meetings[0].attendees) == {"la", "icb", "senco"}
    cancelled = await harness.send(handle, "cancel_meeting", cancelled_by="la", reason="Clash")
    assert cancelled.status is Status.ARRANGING_MEETING
    rebooked = await harness.send(handle, "book_meeting", **booking)  # the slot was released
    assert [m.status.value for m in rebooked.meetings] == ["cancelled", "booked"]

    await harness.advance_to(london(s["meeting"], time(14)))
    held = await harness.send(
        handle,
        "record_meeting",
        outcome="partial_agreement",
        settled_issues=["Section F: speech and language therapy"],
        open_issues=["Section G: health provision"],
        agreed_actions=[
            {"id": "amend", "description": "Amend section F", "owner": "la", "kind": "amend_plan"}
        ],
    )
    (certificate,) = held.certificates
    assert certificate.kind is CertificateKind.AFTER_MEDIATION
    assert (certificate.issued_on, certificate.due_on) == (s["meeting"], s["cert_due"])
    assert held.deadlines["mediation_must_be_arranged_by"].met_on == s["meeting"]
    assert held.agreement is not None
    assert held.agreement.open_issues == ("Section G: health provision",)
    signed = await harness.send(handle, "sign_agreement", signatories=["family", "la", "icb"])
    assert signed.status is Status.TRACKING_ACTIONS
    done = await harness.send(handle, "complete_action", action_id="amend")
    assert done.outcome is Outcome.PARTIAL_AGREEMENT
    await harness.finish(
        handle, "mediation_health_in_issue_icb_told_parties_invited_rebooked_and_partial_agreement"
    )
