"""The council's own case reference (``external_reference``) and the Web UI's workflow ids,
over real HTTP: returned, listed, unique per council, in the subject of every email to the
council and in every webhook; ``referral-<uuid>`` works wherever a referral id does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from api.references import SETTLE
from models.store.tables import ExternalReferenceRow
from tests.conftest import Stack
from tests.e2e.helpers import command, create, eventually, ok
from tests.e2e.test_documents import LA, PARENT
from tests.factories import HERTS, council_bodies, mediation_body


def reference() -> str:
    return f"HCC/SEN/{uuid.uuid4().hex[:10]}"


async def test_external_reference_is_returned_and_listed_when_given_at_intake(
    stack: Stack,
) -> None:
    ref = reference()
    referral = await create(stack.http, mediation_body(external_reference=ref))
    assert referral["external_reference"] == ref
    read = await ok(await stack.http.get(f"/v1/referrals/{referral['id']}"))
    assert read["external_reference"] == ref
    await create(stack.http, mediation_body())  # another referral, no reference
    page = await ok(await stack.http.get("/v1/referrals", params={"external_reference": ref}))
    assert [(i["id"], i["external_reference"]) for i in page["items"]] == [(referral["id"], ref)]


async def test_external_reference_is_409_when_the_council_already_used_it(stack: Stack) -> None:
    ref = reference()
    key = {"Idempotency-Key": f"ref-{uuid.uuid4()}"}
    first = await create(stack.http, mediation_body(external_reference=ref), **key)
    again = await create(stack.http, mediation_body(external_reference=ref), **key)
    assert again["id"] == first["id"], "a retried POST with its key is no duplicate"

    duplicate = await stack.http.post("/v1/referrals", json=mediation_body(external_reference=ref))
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.headers["content-type"].startswith("application/problem+json")
    problem = duplicate.json()
    assert problem["existing_referral_id"] == first["id"]
    assert [e["field"] for e in problem["errors"]] == ["body.external_reference"]

    provider, council = council_bodies()
    await ok(await stack.http.post("/v1/providers", json=provider), 201)
    await ok(await stack.http.post("/v1/local-authorities", json=council), 201)
    elsewhere = await create(
        stack.http, mediation_body(local_authority=council["code"], external_reference=ref)
    )
    assert elsewhere["external_reference"] == ref, "unique per council, not across councils"


async def test_external_reference_is_422_when_not_a_one_line_identifier(stack: Stack) -> None:
    for bad in ("two\nlines", "A Child's name, please", "x" * 65, "-starts-with-dash"):
        response = await stack.http.post(
            "/v1/referrals", json=mediation_body(external_reference=bad)
        )
        assert response.status_code == 422, (bad, response.text)
        fields = [e["field"] for e in response.json()["errors"]]
        assert any(f.endswith("external_reference") for f in fields), fields


async def test_external_reference_is_in_council_email_subjects_and_webhooks_when_given(
    stack: Stack,
) -> None:
    ref = reference()
    endpoint = f"council-{uuid.uuid4().hex[:8]}"
    subscription = await ok(
        await stack.http.post(
            "/v1/webhook-subscriptions",
            json={"url": stack.hooks.url(endpoint), "local_authority": "E10000015"},
        ),
        201,
    )
    stack.hooks.secrets[endpoint] = subscription["secret"]
    try:
        referral = await create(stack.http, mediation_body(external_reference=ref))
        rid = referral["id"]
        await ok(await command(stack.http, rid, "information-session"))
        number = (await ok(await command(stack.http, rid, "decline-mediation")))["certificate"][
            "number"
        ]

        async def certificate_mail(address: str) -> list[str]:
            return [
                str(m.message["Subject"])
                for m in stack.smtp.sink.to(address)
                if number in str(m.message["Subject"])
            ]

        (to_council,) = await eventually(lambda: certificate_mail(LA))
        assert to_council.endswith(f"[{ref}]")
        (to_family,) = await eventually(lambda: certificate_mail(PARENT))
        assert ref not in to_family

        async def hooks() -> list[dict[str, Any]] | None:
            mine = [h.payload for h in stack.hooks.at(endpoint)]
            mine = [p for p in mine if p["data"]["referral_id"] == rid]
            wanted = {"referral.created", "certificate.issued"}
            return mine if wanted <= {p["type"] for p in mine} else None

        payloads = await eventually(hooks)
        assert all(p["data"]["external_reference"] == ref for p in payloads), payloads
    finally:
        await stack.http.delete(f"/v1/webhook-subscriptions/{subscription['id']}")


async def test_workflow_id_is_accepted_when_given_as_a_referral_id(stack: Stack) -> None:
    referral = await create(stack.http, mediation_body())
    wid = f"referral-{referral['id']}"
    read = await ok(await stack.http.get(f"/v1/referrals/{wid}"))
    assert read["id"] == referral["id"]
    for tail in ("events", "documents", "deliveries"):
        await ok(await stack.http.get(f"/v1/referrals/{wid}/{tail}"))
    session = await ok(await command(stack.http, wid, "information-session"))
    assert session["status"] == "awaiting_family_decision"
    missing = await stack.http.get(f"/v1/referrals/referral-{uuid.uuid4()}")
    assert missing.status_code == 404


async def test_external_reference_left_by_a_start_that_never_happened_is_taken_over_when_stale(
    stack: Stack,
) -> None:
    """A claim whose referral never started (the API died between claim and start) is taken
    over by the next intake once it is stale; a fresh one may be a start still in flight."""
    fresh, stale = reference(), reference()
    now = datetime.now(UTC)
    async with stack.db.sessionmaker() as session:
        for ref, at in ((fresh, now), (stale, now - SETTLE - timedelta(seconds=1))):
            session.add(
                ExternalReferenceRow(
                    local_authority=HERTS,
                    reference=ref,
                    referral_id=str(uuid.uuid4()),
                    created_at=at,
                )
            )
        await session.commit()
    in_flight = await stack.http.post(
        "/v1/referrals", json=mediation_body(external_reference=fresh)
    )
    assert in_flight.status_code == 409, in_flight.text
    taken_over = await create(stack.http, mediation_body(external_reference=stale))
    assert taken_over["external_reference"] == stale
    page = await ok(await stack.http.get("/v1/referrals", params={"external_reference": stale}))
    assert [i["id"] for i in page["items"]] == [taken_over["id"]]
