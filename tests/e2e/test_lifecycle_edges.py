"""The lifecycle edges over real HTTP (uvicorn), with the dev server, worker, database, a
real SMTP server and a back office receiving webhooks: a referral entered late, intake with
the facts already known, a breach corrected, a withdrawal while a meeting is booked, the
certificate after full agreement, a cancellation sent as the Temporal Web UI sends it, and
the reconciler after a terminate."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from email.message import EmailMessage
from typing import Any

import icalendar
import pytest

from models.adapters.bank_holidays import england_and_wales_calendar
from models.adapters.pdf import long_date
from models.domain.deadlines import add_working_days, last_friday_in_june
from models.messages import workflow_id
from tests.conftest import Stack
from tests.e2e.helpers import command, create, eventually, london_at, meeting_day, ok, today
from tests.factories import CHILD_NAME, contact, dr_body, mediation_body
from tests.servers import plain_text
from workflows.schedules import RECONCILE_SCHEDULE_ID, ensure_reconcile_schedule

PROVIDER = "senmediation@kids.org.uk"  # Kids, Hertfordshire's provider (seeded)


def unique_family(**overrides: Any) -> tuple[str, dict[str, Any]]:
    """A referrer with an address of its own, so this test's emails are easy to find."""
    address = f"parent-{uuid.uuid4().hex[:8]}@example.org"
    referrer = {"role": "parent", "contact": contact("Grace Testparent", address)}
    return address, {"referrer": referrer, **overrides}


async def read(stack: Stack, rid: str) -> dict[str, Any]:
    return await ok(await stack.http.get(f"/v1/referrals/{rid}"))


async def mediator_with_email(stack: Stack) -> tuple[str, str]:
    address = f"mediator-{uuid.uuid4().hex[:8]}@example.org"
    body = {"name": "Sol Mediator", "email": address, "send_trained": True}
    created = await ok(await stack.http.post("/v1/mediators", json=body), 201)
    return created["id"], address


async def booked_with_mailboxes(
    stack: Stack, starts_at: str
) -> tuple[str, str, str, dict[str, Any]]:
    """A mediation booked with a mediator who has an email: (referral id, the family's and the
    mediator's addresses, the booking)."""
    mediator, mediator_email = await mediator_with_email(stack)
    family, extra = unique_family()
    rid = (await create(stack.http, mediation_body(**extra)))["id"]
    await ok(await command(stack.http, rid, "request-mediation"))
    booking = {"mediator_id": mediator, "starts_at": starts_at}
    await ok(await command(stack.http, rid, "book-meeting", booking))
    return rid, family, mediator_email, booking


async def same_slot_for_another_family(stack: Stack, booking: dict[str, Any]) -> None:
    """The slot is free: another referral books the same mediator at the same time."""
    other = await create(stack.http, mediation_body())
    await ok(await command(stack.http, other["id"], "request-mediation"))
    await ok(await command(stack.http, other["id"], "book-meeting", booking))


async def mails_to(
    stack: Stack, address: str, subject: str, about: str | None = None
) -> list[EmailMessage]:
    """The emails to ``address`` whose subject has ``subject`` (and, given ``about``, about
    that referral), once at least one has arrived."""

    async def found() -> list[EmailMessage] | None:
        got = [
            m.message
            for m in stack.smtp.sink.to(address)
            if subject in m.message["Subject"]
            and (about is None or f"Referral reference: {about}" in plain_text(m.message))
        ]
        return got or None

    return await eventually(found, 40)


def calendar_event(message: EmailMessage) -> tuple[str, icalendar.cal.Component]:
    (part,) = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    calendar = icalendar.Calendar.from_ical(part.get_content())
    (event,) = calendar.walk("VEVENT")
    return str(calendar["METHOD"]), event


@pytest.fixture
async def back_office(stack: Stack) -> AsyncIterator[str]:
    """A webhook subscription for every event type (the default), its endpoint's name."""
    endpoint = f"edges-{uuid.uuid4().hex[:8]}"
    created = await ok(
        await stack.http.post("/v1/webhook-subscriptions", json={"url": stack.hooks.url(endpoint)}),
        201,
    )
    stack.hooks.secrets[endpoint] = created["secret"]
    yield endpoint
    await stack.http.delete(f"/v1/webhook-subscriptions/{created['id']}")


async def hooks(stack: Stack, endpoint: str, rid: str, kind: str) -> list[dict[str, Any]]:
    async def found() -> list[dict[str, Any]] | None:
        got = [
            d.payload
            for d in stack.hooks.at(endpoint)
            if d.payload["type"] == kind and d.payload["data"].get("referral_id") == rid
        ]
        return got or None

    return await eventually(found, 40)


# ------------------------------------------------------------------- the two kinds of clock


async def test_dr_referral_entered_late_waits_for_answers_when_received_weeks_ago(
    stack: Stack,
) -> None:
    received = today() - timedelta(days=27)
    referral = await create(stack.http, dr_body(received_on=received.isoformat()))
    rid = referral["id"]
    assert referral["status"] == "awaiting_party_responses"
    assert referral["parties_contacted_on"] == today().isoformat()
    window = referral["deadlines"]["party_responses_due_by"]
    assert window["state"] == "open"
    calendar = england_and_wales_calendar(today().year, today().year + 1)
    assert window["due_on"] == add_working_days(today(), 10, calendar).isoformat()
    assert {p["answer"] for p in referral["parties"]} == {"pending"}
    # The school's acceptance, phoned in last week, is recorded now.
    accepted = await ok(
        await command(
            stack.http,
            rid,
            "party-response",
            {
                "party_id": "school",
                "answer": "accepted",
                "on": (today() - timedelta(7)).isoformat(),
            },
        )
    )
    assert accepted["status"] == "awaiting_party_responses"
    # The letter asked the parties to answer by a date still ahead (the window's last day).
    (letter,) = await mails_to(stack, "head@oakfield.example.sch.uk", "Will you take part", rid)
    due = date.fromisoformat(window["due_on"])
    assert f"by {long_date(due)}" in plain_text(letter)


async def test_intake_with_known_facts_starts_the_referral_in_its_true_state(
    stack: Stack,
) -> None:
    received = today() - timedelta(days=12)
    family, extra = unique_family(received_on=received.isoformat())
    body = mediation_body(
        **extra,
        decision={"type": "refusal_to_assess", "letter_date": received.isoformat()},
        facts=[
            {"command": "decline_mediation", "on": (received + timedelta(days=4)).isoformat()},
            {"command": "information_session", "on": (received + timedelta(days=2)).isoformat()},
            {"command": "action", "on": (received + timedelta(days=1)).isoformat()},
        ],
    )
    referral = await create(stack.http, body)
    assert referral["status"] == "closed"
    assert referral["outcome"] == "declined_mediation"
    assert referral["deadlines"]["referral_actioned_by"]["state"] == "met"
    assert referral["information_session_on"] == (received + timedelta(days=2)).isoformat()
    certificate = referral["certificate"]
    assert certificate["kind"] == "declined_mediation"
    assert certificate["issued_on"] == today().isoformat()  # issued now, as the command would
    assert "facts" not in referral["details"] or referral["details"]["facts"] == []
    events = await ok(await stack.http.get(f"/v1/referrals/{referral['id']}/events"))
    dated = [(e["type"], e["occurred_on"]) for e in events["items"]]
    assert ("information_session.held", (received + timedelta(days=2)).isoformat()) in dated
    (mail,) = await mails_to(stack, family, "Mediation certificate")
    assert CHILD_NAME not in str(mail["Subject"])


async def test_intake_fact_the_rules_refuse_is_a_422_naming_it(stack: Stack) -> None:
    received = today() - timedelta(days=5)
    body = mediation_body(
        received_on=received.isoformat(),
        decision={"type": "refusal_to_assess", "letter_date": received.isoformat()},
        facts=[
            {"command": "information_session", "on": received.isoformat()},
            {"command": "decline_mediation"},
            {"command": "party_response", "party_id": "la", "answer": "accepted", "on": "x"},
        ],
    )
    response = await stack.http.post("/v1/referrals", json=body)
    assert response.status_code == 422, response.text
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"body.facts.2.on"}  # the shape first: every field wrong in it
    del body["facts"][2]
    response = await stack.http.post("/v1/referrals", json=body)
    assert [e["field"] for e in response.json()["errors"]] == ["body.facts.1.on"]
    body["facts"] = [{"command": "decline_mediation", "on": received.isoformat()}]
    response = await stack.http.post("/v1/referrals", json=body)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "body.facts.0"
    assert "'decline-mediation' is not possible now" in error["message"]


async def test_breach_is_corrected_and_a_deadline_met_webhook_follows(
    stack: Stack, back_office: str
) -> None:
    received = today() - timedelta(days=12)  # DL-13 (5 working days) long past: breached
    referral = await create(stack.http, mediation_body(received_on=received.isoformat()))
    rid = referral["id"]
    assert referral["deadlines"]["referral_actioned_by"]["state"] == "breached"
    assert referral["breached"] is True
    due = referral["deadlines"]["referral_actioned_by"]["due_on"]
    actioned = await ok(await command(stack.http, rid, "action", {"on": due}))
    assert actioned["deadlines"]["referral_actioned_by"]["state"] == "met"
    assert actioned["breached"] is False
    listed = await ok(await stack.http.get("/v1/referrals", params={"breached": "true"}))
    assert rid not in {item["id"] for item in listed["items"]}
    (breached,) = await hooks(stack, back_office, rid, "deadline.breached")
    (met,) = await hooks(stack, back_office, rid, "deadline.met")
    assert met["data"]["corrected"] is True
    assert (met["data"]["deadline"], met["data"]["met_on"]) == ("referral_actioned_by", due)
    assert met["data"]["seq"] > breached["data"]["seq"]


# ------------------------------------------------------------------- endings


async def test_withdraw_while_booked_frees_the_slot_and_cancels_everyone_s_calendar(
    stack: Stack, back_office: str
) -> None:
    rid, family, mediator_email, booking = await booked_with_mailboxes(
        stack, london_at(meeting_day(14), 10)
    )
    (invitation,) = await mails_to(stack, mediator_email, "Invitation")
    method, invited = calendar_event(invitation)
    assert (method, invited.decoded("SEQUENCE"), str(invited["STATUS"])) == (
        "PUBLISH",
        0,
        "CONFIRMED",
    )

    withdrawn = await ok(await command(stack.http, rid, "withdraw"))
    assert withdrawn["status"] == "closed"
    assert withdrawn["meetings"][-1]["status"] == "cancelled"

    await same_slot_for_another_family(stack, booking)

    (cancelled,) = await mails_to(stack, mediator_email, "Meeting cancelled")
    method, event = calendar_event(cancelled)
    assert method == "CANCEL"
    assert str(event["UID"]) == str(invited["UID"])
    assert event.decoded("SEQUENCE") > invited.decoded("SEQUENCE")
    assert str(event["STATUS"]) == "CANCELLED"
    assert "because the referral was withdrawn" in plain_text(cancelled)
    for address in (family, "sam.officer@example.gov.uk", "senco@oakfield.example.sch.uk"):
        assert await mails_to(stack, address, "Meeting cancelled", rid)
    (hook,) = await hooks(stack, back_office, rid, "meeting.cancelled")
    assert hook["data"]["reason"] == "referral_withdrawn"
    # The family is told what withdrawing means for their right of appeal.
    (told,) = await mails_to(stack, family, "Referral withdrawn")
    text = plain_text(told)
    assert "to appeal to the Tribunal you need a mediation certificate" in text
    assert CHILD_NAME not in text


async def test_full_agreement_still_gets_a_certificate_within_three_working_days(
    stack: Stack,
) -> None:
    referral = await create(stack.http, mediation_body())
    rid = referral["id"]
    await ok(await command(stack.http, rid, "request-mediation"))
    booking = {
        "mediator_id": stack.registry["mediator"],
        "starts_at": london_at(today(), 0),
        "short_notice_consented": True,
    }
    await ok(await command(stack.http, rid, "book-meeting", booking))
    action = {"description": "Issue the amended plan", "owner": "la", "kind": "amend_plan"}
    agreed = await ok(
        await command(
            stack.http, rid, "record-meeting", {"outcome": "agreement", "agreed_actions": [action]}
        )
    )
    certificate = agreed["certificate"]
    assert certificate["kind"] == "after_mediation"
    assert certificate["issued_on"] == today().isoformat()
    assert agreed["deadlines"]["certificate_due_by"]["rule"] == "DL-07"
    assert agreed["status"] == "agreement_awaiting_signature"
    signed = await ok(
        await command(stack.http, rid, "sign-agreement", {"signatories": ["family", "la"]})
    )
    assert signed["status"] == "tracking_actions"
    assert signed["agreement"]["actions"][0]["due_on"] is not None  # still tracked


async def test_cancellation_sent_as_the_web_ui_sends_it_closes_the_case(
    stack: Stack, back_office: str
) -> None:
    rid, family, mediator_email, booking = await booked_with_mailboxes(
        stack, london_at(meeting_day(15), 14)
    )

    # The Web UI's "Request Cancellation": a workflow cancellation request, nothing more.
    await stack.temporal.get_workflow_handle(workflow_id(rid)).cancel()

    async def closed() -> dict[str, Any] | None:
        current = await read(stack, rid)
        return current if current["status"] == "closed" else None

    done = await eventually(closed)
    assert done["outcome"] == "cancelled"
    assert done["allowed_commands"] == []
    assert done["meetings"][-1]["status"] == "cancelled"
    events = await ok(await stack.http.get(f"/v1/referrals/{rid}/events"))
    (cancelled,) = [e for e in events["items"] if e["type"] == "referral.cancelled"]
    assert cancelled["actor"].startswith("operator (")
    refused = await command(stack.http, rid, "withdraw")
    assert refused.status_code == 409
    (closed_hook,) = await hooks(stack, back_office, rid, "referral.closed")
    assert closed_hook["data"]["outcome"] == "cancelled"
    assert await mails_to(stack, mediator_email, "Meeting cancelled")
    (told,) = await mails_to(stack, family, "Referral closed")
    assert "mediation certificate" in plain_text(told)
    await same_slot_for_another_family(stack, booking)


async def test_reconciler_marks_a_terminated_referral_stopped_and_tells_the_provider(
    stack: Stack,
) -> None:
    referral = await create(stack.http, mediation_body())
    rid = referral["id"]
    await stack.temporal.get_workflow_handle(workflow_id(rid)).terminate(reason="by mistake")
    await ensure_reconcile_schedule(stack.temporal, stack.settings.task_queue, 60)
    schedule = stack.temporal.get_schedule_handle(RECONCILE_SCHEDULE_ID)
    try:

        async def stopped() -> dict[str, Any] | None:
            current = await read(stack, rid)
            if current["status"] == "stopped":
                return current
            await schedule.trigger()  # visibility catches up: run it again until it sees it
            await asyncio.sleep(1)
            return None

        found = await eventually(stopped, seconds=60)
    finally:
        await schedule.delete()
    assert found["stopped_on"] == today().isoformat()
    assert found["allowed_commands"] == []
    assert "terminated" in found["closure_reason"]
    events = await ok(await stack.http.get(f"/v1/referrals/{rid}/events"))
    (event,) = [e for e in events["items"] if e["type"] == "referral.stopped"]
    assert event["data"]["workflow_status"] == "terminated"
    refused = await command(stack.http, rid, "information-session")
    assert refused.status_code == 409
    assert refused.json()["current_status"] == "stopped"
    (mail,) = await mails_to(stack, PROVIDER, f"Referral {rid} has stopped")
    assert CHILD_NAME not in plain_text(mail)
    metrics = await stack.http.get("/metrics")
    stopped_total = [
        float(line.split()[-1])
        for line in metrics.text.splitlines()
        if line.startswith("sendmed_referrals_stopped_total")
    ]
    assert stopped_total
    assert stopped_total[0] >= 1


# ------------------------------------------------------------------- rules and input


async def test_la_unable_to_arrange_is_a_409_saying_why_when_no_certificate_is_needed(
    stack: Stack,
) -> None:
    decision = {"type": "plan_contents", "letter_date": today().isoformat(), "sections": ["I"]}
    referral = await create(stack.http, mediation_body(decision=decision))
    assert "contact_mediation_adviser_by" not in referral["deadlines"]
    rid = referral["id"]
    await ok(await command(stack.http, rid, "request-mediation"))
    response = await command(stack.http, rid, "la-unable-to-arrange")
    assert response.status_code == 409
    assert "needs no mediation certificate to appeal" in response.json()["detail"]


@pytest.mark.parametrize("role", ["parent", "young_person"])
async def test_sixteen_around_september_is_not_refused_on_age_alone_when_term_unknown(
    stack: Stack, role: str
) -> None:
    # A 16th birthday on 3 September whose two possible school leaving dates (the June
    # before it, or the June after) lie either side of today (RULES.md A15).
    day = today()
    year = day.year if day > last_friday_in_june(day.year) else day.year - 1
    dob = f"{year - 16}-09-03"
    body = mediation_body(child={"name": "A Young Person", "date_of_birth": dob})
    body["referrer"]["role"] = role
    referral = await create(stack.http, body)
    assert "school_term_start_needed" in {n["code"] for n in referral["notices"]}


async def test_cross_field_422_names_each_field_and_lists_every_error(stack: Stack) -> None:
    decision = {"type": "plan_contents", "letter_date": "2026-05-01", "sections": ["C"]}
    response = await stack.http.post("/v1/referrals", json=mediation_body(decision=decision))
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["body.health_care_in_issue", "body.icbs", "body.health_provision_sought"]
    assert not any("mediation" in f.split(".") for f in fields)


async def test_request_models_are_strict_but_take_iso_dates(stack: Stack) -> None:
    referral = await create(stack.http, mediation_body())
    await ok(await command(stack.http, referral["id"], "request-mediation"))
    booking = {
        "mediator_id": stack.registry["mediator"],
        "starts_at": london_at(meeting_day(14), 10),
        "duration_minutes": "150",
        "after_deadline_acknowledged": "true",
        "notice_given_on": 0,
    }
    response = await command(stack.http, referral["id"], "book-meeting", booking)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {
        "body.duration_minutes",
        "body.after_deadline_acknowledged",
        "body.notice_given_on",
    }
    booking |= {"duration_minutes": 150, "after_deadline_acknowledged": False}
    booking["notice_given_on"] = today().isoformat()
    booked = await ok(await command(stack.http, referral["id"], "book-meeting", booking))
    assert booked["status"] == "meeting_booked"


async def test_referral_entered_years_late_opens_with_its_clocks_from_today(stack: Stack) -> None:
    received = today() - timedelta(days=4 * 365)
    referral = await create(stack.http, dr_body(received_on=received.isoformat()))
    assert referral["parties_contacted_on"] == today().isoformat()
    assert referral["deadlines"]["referral_actioned_by"]["state"] == "breached"
