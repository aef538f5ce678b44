"""Mediation referrals over real HTTP against the dev server, worker and database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from models.messages import workflow_id
from tests.conftest import Stack
from tests.e2e.helpers import command, create, london_at, meeting_day, ok, today
from tests.factories import CHILD_NAME, mediation_body


async def expected_appeal_deadline(stack: Stack, decision: str, certificate: str) -> str:
    """The public calculator's answer for the same dates (itself proven by RULES.md's examples)."""
    response = await stack.http.post(
        "/v1/timescales",
        json={"decision_letter_date": decision, "certificate_issue_date": certificate},
    )
    result: dict[str, Any] = await ok(response)
    deadline: str = result["appeal_deadline"]
    return deadline


async def test_decline_after_information_session_issues_certificate(stack: Stack) -> None:
    referral = await create(stack.http, mediation_body())
    rid = referral["id"]
    assert referral["status"] == "awaiting_information_session"
    assert referral["certificate"] is None
    assert referral["deadlines"]["referral_actioned_by"]["state"] == "open"

    session = await ok(await command(stack.http, rid, "information-session"))
    assert session["status"] == "awaiting_family_decision"
    declined = await ok(await command(stack.http, rid, "decline-mediation"))

    assert declined["status"] == "closed"
    assert declined["outcome"] == "declined_mediation"
    certificate = declined["certificate"]
    assert certificate["kind"] == "declined_mediation"
    assert certificate["issued_on"] == today().isoformat()
    assert certificate["number"].startswith("MC-")
    assert declined["deadlines"]["certificate_due_by"]["state"] == "met"
    assert certificate["appeal_deadline"] == await expected_appeal_deadline(
        stack, "2026-11-02", certificate["issued_on"]
    )
    # Read-your-writes: the read model already shows it.
    read = await ok(await stack.http.get(f"/v1/referrals/{rid}"))
    assert read["certificate"] == certificate
    assert read["allowed_commands"] == []


async def test_meeting_without_agreement_issues_certificate_with_appeal_deadline(
    stack: Stack,
) -> None:
    referral = await create(stack.http, mediation_body())
    rid = referral["id"]
    requested = await ok(await command(stack.http, rid, "request-mediation"))
    assert requested["status"] == "arranging_meeting"
    arrange = requested["deadlines"]["mediation_must_be_arranged_by"]
    assert arrange["rule"] == "DL-03"
    assert requested["deadlines"]["deemed_certificate_due_by"]["rule"] == "DL-08"

    # Held today: booked for today with the family's consent to short notice (DL-06).
    booked = await ok(
        await command(
            stack.http,
            rid,
            "book-meeting",
            {
                "mediator_id": stack.registry["mediator"],
                "starts_at": london_at(today(), 0),
                "short_notice_consented": True,
            },
        )
    )
    assert booked["status"] == "meeting_booked"
    meeting = booked["meetings"][-1]
    assert meeting["mediator"]["id"] == stack.registry["mediator"]
    assert set(meeting["attendees"]) == {"la", "senco"}
    assert booked["meetings"][-1]["short_notice_consented"] is True

    held = await ok(await command(stack.http, rid, "record-meeting", {"outcome": "no_agreement"}))
    assert held["status"] == "closed"
    assert held["outcome"] == "no_agreement"
    certificate = held["certificate"]
    assert certificate["kind"] == "after_mediation"
    assert held["deadlines"]["mediation_must_be_arranged_by"]["state"] == "met"
    assert held["deadlines"]["deemed_certificate_due_by"]["state"] == "not_applicable"
    assert held["appeal_deadline"] == certificate["appeal_deadline"]
    assert certificate["appeal_deadline"] == await expected_appeal_deadline(
        stack, "2026-11-02", certificate["issued_on"]
    )


async def test_illegal_command_is_409_naming_state_and_allowed(stack: Stack) -> None:
    referral = await create(stack.http, mediation_body())
    response = await command(
        stack.http, referral["id"], "record-meeting", {"outcome": "no_agreement"}
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["current_status"] == "awaiting_information_session"
    assert "information-session" in problem["allowed_commands"]
    assert "awaiting_information_session" in problem["detail"]
    # Decline before the information session is not allowed either.
    early = await command(stack.http, referral["id"], "decline-mediation")
    assert early.status_code == 409


async def test_command_to_an_unknown_or_finished_referral_is_a_problem_not_a_500(
    stack: Stack,
) -> None:
    """Commands go straight to the workflow: an id no referral has is a 404 problem, and a
    referral whose workflow has ended is a 409 saying so (both read from the read model)."""
    unknown = str(uuid.uuid4())
    missing = await command(stack.http, unknown, "information-session")
    assert missing.status_code == 404, missing.text
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert unknown in missing.json()["detail"]

    referral = await create(stack.http, mediation_body())
    rid = referral["id"]
    closed = await ok(await command(stack.http, rid, "withdraw"))
    assert closed["status"] == "closed"
    await stack.temporal.get_workflow_handle(workflow_id(rid)).result()  # the workflow ended
    late = await command(stack.http, rid, "information-session")
    assert late.status_code == 409, late.text
    assert late.json()["current_status"] == "closed"
    assert late.json()["allowed_commands"] == []


async def test_duplicate_post_with_idempotency_key_returns_same_referral(stack: Stack) -> None:
    body = mediation_body()
    headers = {"Idempotency-Key": "dup-test-1"}
    first, second = await asyncio.gather(
        stack.http.post("/v1/referrals", json=body, headers=headers),
        stack.http.post("/v1/referrals", json=body, headers=headers),
    )
    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert first.json()["id"] == second.json()["id"]
    third = await stack.http.post("/v1/referrals", json=body, headers=headers)
    assert third.json() == first.json()
    changed = await stack.http.post(
        "/v1/referrals", json={**body, "local_authority": "E10000016"}, headers=headers
    )
    assert changed.status_code == 422
    assert "Idempotency-Key" in changed.json()["title"]


async def test_invalid_referral_is_422_naming_the_field(stack: Stack) -> None:
    body = mediation_body(
        referrer={"role": "young_person", "contact": {"name": "A", "email": "a@example.org"}}
    )
    response = await stack.http.post("/v1/referrals", json=body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["field"] == "body.referrer.role"
    assert "compulsory school age" in problem["detail"]
    assert CHILD_NAME not in response.text


async def test_section_i_only_is_accepted_and_says_no_certificate_needed(stack: Stack) -> None:
    body = mediation_body(
        decision={"type": "plan_contents", "letter_date": "2026-11-02", "sections": ["I"]}
    )
    referral = await create(stack.http, body)
    assert referral["certificate_required"] is False
    codes = [n["code"] for n in referral["notices"]]
    assert "section_i_only" in codes
    assert "no mediation certificate is needed" in referral["notices"][0]["message"].lower()


async def test_late_contact_is_accepted_and_flagged(stack: Stack) -> None:
    body = mediation_body(decision={"type": "cease_to_maintain", "letter_date": "2026-08-03"})
    referral = await create(stack.http, body)
    assert [n["code"] for n in referral["notices"]] == ["late_contact"]
    assert referral["deadlines"]["contact_mediation_adviser_by"]["state"] == "breached"
    assert referral["deadlines"]["contact_mediation_adviser_by"]["due_on"] == "2026-10-03"


async def test_unknown_council_is_422(stack: Stack) -> None:
    response = await stack.http.post(
        "/v1/referrals", json=mediation_body(local_authority="E99999999")
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "body.local_authority",
            "message": "unknown local authority 'E99999999' (see GET /v1/local-authorities)",
        }
    ]


async def test_booking_refuses_conflicted_untrained_or_non_neutral(stack: Stack) -> None:
    referral = await create(stack.http, mediation_body())
    rid = referral["id"]
    await ok(await command(stack.http, rid, "request-mediation"))
    at = london_at(meeting_day(12))
    cases = {
        stack.registry["conflicted"]: "conflict of interest with the local authority",
        stack.registry["school_conflict"]: "conflict of interest with Oakfield Primary School",
        stack.registry["untrained"]: "not SEND-trained",
        "no-such-mediator": "no active mediator",
    }
    for mediator, message in cases.items():
        response = await command(
            stack.http, rid, "book-meeting", {"mediator_id": mediator, "starts_at": at}
        )
        assert response.status_code == 422, response.text
        assert message in response.json()["detail"]
        assert response.json()["errors"][0]["field"] == "body.mediator_id"
    school_hall = await command(
        stack.http,
        rid,
        "book-meeting",
        {
            "mediator_id": stack.registry["mediator"],
            "starts_at": at,
            "venue": {"kind": "in_person", "venue_id": stack.registry["school_venue"]},
        },
    )
    assert school_hall.status_code == 422
    assert "not a neutral venue" in school_hall.json()["detail"]
    state = await ok(await stack.http.get(f"/v1/referrals/{rid}"))
    assert state["status"] == "arranging_meeting"
    assert state["meetings"] == []


async def test_cancel_and_rebook_frees_and_takes_the_mediators_slot(stack: Stack) -> None:
    first = await create(stack.http, mediation_body())
    second = await create(stack.http, mediation_body())
    for r in (first, second):
        await ok(await command(stack.http, r["id"], "request-mediation"))
    at = london_at(meeting_day(16), hour=14)
    booking = {
        "mediator_id": stack.registry["mediator"],
        "starts_at": at,
        "venue": {"kind": "in_person", "venue_id": stack.registry["venue"]},
    }
    booked = await ok(await command(stack.http, first["id"], "book-meeting", booking))
    assert booked["meetings"][0]["venue"]["name"] == "Hatfield Community Centre"
    clash = await command(stack.http, second["id"], "book-meeting", booking)
    assert clash.status_code == 422
    assert "already booked" in clash.json()["detail"]
    cancelled = await ok(
        await command(
            stack.http,
            first["id"],
            "cancel-meeting",
            {"cancelled_by": "family", "reason": "Child unwell"},
        )
    )
    assert cancelled["status"] == "arranging_meeting"
    assert cancelled["meetings"][0]["status"] == "cancelled"
    taken = await ok(await command(stack.http, second["id"], "book-meeting", booking))
    assert taken["status"] == "meeting_booked"
    rebooked = await ok(
        await command(
            stack.http,
            first["id"],
            "book-meeting",
            {**booking, "starts_at": london_at(meeting_day(17), hour=10)},
        )
    )
    assert [m["status"] for m in rebooked["meetings"]] == ["cancelled", "booked"]


async def test_referrals_are_findable_in_visibility_by_status_and_council(stack: Stack) -> None:
    referral = await create(stack.http, mediation_body())
    rid = referral["id"]
    await ok(await command(stack.http, rid, "request-mediation"))
    query = (
        f"WorkflowId = 'referral-{rid}' AND ReferralStatus = 'arranging_meeting' "
        "AND LocalAuthority = 'E10000015' AND ReferralRoute = 'mediation' "
        "AND CertificateIssued = false AND NextDeadlineName = 'referral_actioned_by'"
    )
    for _ in range(100):
        found = [w.id async for w in stack.temporal.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.1)
    assert found == [f"referral-{rid}"]
    handle = stack.temporal.get_workflow_handle(f"referral-{rid}")
    description = await handle.describe()
    summary = f"Mediation referral {rid[:8]} · Hertfordshire County Council (E10000015)"
    assert await description.static_summary() == summary
    assert CHILD_NAME not in str(description.raw_description)
