"""Disagreement Resolution over real HTTP: a full case, the all-decline case, no certificate."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Stack
from tests.e2e.helpers import command, create, london_at, ok, today
from tests.factories import dr_body


async def test_full_dr_case_from_consent_to_completed_actions(stack: Stack) -> None:
    referral = await create(stack.http, dr_body())
    rid = referral["id"]
    assert referral["route"] == "disagreement_resolution"
    assert referral["status"] == "awaiting_party_responses"
    assert referral["certificate_required"] is False
    assert "never issues a mediation certificate" in referral["certificate_policy"]
    assert {p["id"]: p["answer"] for p in referral["parties"]} == {
        "school": "pending",
        "la": "pending",
    }

    await ok(
        await command(
            stack.http, rid, "party-response", {"party_id": "school", "answer": "accepted"}
        )
    )
    both = await ok(
        await command(stack.http, rid, "party-response", {"party_id": "la", "answer": "accepted"})
    )
    assert both["status"] == "arranging_meeting"
    read = await ok(await stack.http.get(f"/v1/referrals/{rid}"))
    assert {p["id"]: p["answer"] for p in read["parties"]} == {
        "school": "accepted",
        "la": "accepted",
    }

    actioned = await ok(await command(stack.http, rid, "action"))
    assert actioned["deadlines"]["referral_actioned_by"]["state"] == "met"
    day = today()
    await ok(
        await command(
            stack.http,
            rid,
            "book-meeting",
            {
                "mediator_id": stack.registry["mediator"],
                "starts_at": london_at(day, 1),
                "short_notice_consented": True,
            },
        )
    )
    due = (day + timedelta(days=30)).isoformat()
    await ok(
        await command(
            stack.http,
            rid,
            "record-meeting",
            {
                "outcome": "agreement",
                "settled_issues": ["Support plan"],
                "agreed_actions": [
                    {
                        "id": "plan",
                        "description": "Write plan",
                        "owner": "school",
                        "kind": "agreed_date",
                        "due_on": due,
                    }
                ],
            },
        )
    )
    signed = await ok(
        await command(
            stack.http, rid, "sign-agreement", {"signatories": ["family", "school", "la"]}
        )
    )
    assert signed["status"] == "tracking_actions"
    assert signed["next_deadline"] == {"name": "action:plan", "due_on": due}
    done = await ok(await command(stack.http, rid, "complete-action", {"action_id": "plan"}))
    assert done["status"] == "closed"
    assert done["outcome"] == "agreement"
    assert done["certificate"] is None
    assert done["certificates"] == []


async def test_all_parties_decline_closes_the_case(stack: Stack) -> None:
    referral = await create(stack.http, dr_body())
    rid = referral["id"]
    await ok(
        await command(
            stack.http,
            rid,
            "party-response",
            {
                "party_id": "school",
                "answer": "declined",
                "reason": "We prefer a meeting with the SENCO",
            },
        )
    )
    closed = await ok(
        await command(
            stack.http,
            rid,
            "party-response",
            {"party_id": "la", "answer": "declined", "reason": "Not appropriate"},
        )
    )
    assert closed["status"] == "closed"
    assert closed["outcome"] == "parties_declined"
    assert closed["allowed_commands"] == []
    assert {p["id"]: (p["answer"], p["reason"]) for p in closed["parties"]} == {
        "school": ("declined", "We prefer a meeting with the SENCO"),
        "la": ("declined", "Not appropriate"),
    }
    late = await command(
        stack.http, rid, "party-response", {"party_id": "la", "answer": "accepted"}
    )
    assert late.status_code == 409


async def test_no_certificate_can_be_issued_on_dr(stack: Stack) -> None:
    referral = await create(stack.http, dr_body())
    rid = referral["id"]
    for name in (
        "decline-mediation",
        "request-mediation",
        "information-session",
        "la-unable-to-arrange",
    ):
        response = await command(stack.http, rid, name)
        assert response.status_code == 409, name
        assert "certificate" not in response.json().get("allowed_commands", [])
    await ok(
        await command(
            stack.http, rid, "party-response", {"party_id": "school", "answer": "accepted"}
        )
    )
    await ok(
        await command(
            stack.http,
            rid,
            "book-meeting",
            {
                "mediator_id": stack.registry["mediator"],
                "starts_at": london_at(today(), 2),
                "short_notice_consented": True,
            },
        )
    )
    closed = await ok(await command(stack.http, rid, "record-meeting", {"outcome": "no_agreement"}))
    assert closed["status"] == "closed"
    assert closed["certificate"] is None
    assert "certificate_due_by" not in closed["deadlines"]


async def test_appealable_dispute_on_dr_points_to_mediation(stack: Stack) -> None:
    response = await stack.http.post(
        "/v1/referrals", json=dr_body(appealable_decision="cease_to_maintain")
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/use-mediation")
    assert problem["mediation_referral"]["route"] == "mediation"
    assert "belongs to Mediation" in problem["detail"]
