"""Documents end to end: the workflow issues a certificate by itself; it arrives by email
(a real SMTP server) and by signed webhook (a back office), is served and verifies."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from pypdf import PdfReader

from models.adapters.pdf import long_date
from tests.conftest import Stack
from tests.e2e.helpers import command, create, eventually, ok, today
from tests.factories import CHILD_NAME, mediation_body

PARENT = "grace.parent@example.org"
LA = "sam.officer@example.gov.uk"


@pytest.fixture
async def subscription(stack: Stack) -> AsyncIterator[dict[str, Any]]:
    endpoint = f"case-system-{uuid.uuid4().hex[:8]}"
    created = await ok(
        await stack.http.post(
            "/v1/webhook-subscriptions",
            json={"url": stack.hooks.url(endpoint), "event_types": ["certificate.issued"]},
        ),
        201,
    )
    stack.hooks.secrets[endpoint] = created["secret"]
    created["endpoint"] = endpoint
    yield created
    await stack.http.delete(f"/v1/webhook-subscriptions/{created['id']}")


def pdf_text(content: bytes) -> str:
    return " ".join(
        " ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(content)).pages
    )


async def delivered(stack: Stack, rid: str, number: str) -> dict[str, Any] | None:
    listing = await ok(await stack.http.get(f"/v1/referrals/{rid}/documents"))
    for document in listing["documents"]:
        if (
            document["number"] == number
            and all(d["status"] == "sent" for d in document["deliveries"])
            and len(document["deliveries"]) >= 3
        ):
            return dict(document)
    return None


async def test_declined_mediation_certificate_is_sent_served_and_verified(
    stack: Stack, subscription: dict[str, Any]
) -> None:
    referral = await create(stack.http, mediation_body())
    rid = referral["id"]
    await ok(await command(stack.http, rid, "information-session"))
    certificate = (await ok(await command(stack.http, rid, "decline-mediation")))["certificate"]
    number = certificate["number"]

    document = await eventually(lambda: delivered(stack, rid, number))
    assert {(d["recipient"], d["status"]) for d in document["deliveries"]} == {
        ("family", "sent"),
        ("la", "sent"),
        (subscription["id"], "sent"),
    }
    pdf = await stack.http.get(f"/v1/documents/{number}")
    assert pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    assert number in text
    assert f"by 5pm on {long_date(date.fromisoformat(certificate['appeal_deadline']))}" in text

    digest = hashlib.sha256(pdf.content).hexdigest()
    verified = await ok(
        await stack.http.get(f"/v1/documents/{number}/verify", params={"sha256": digest})
    )
    assert verified["genuine"] is True
    assert verified["sha256_matches"] is True
    assert verified["issued_on"] == certificate["issued_on"]
    assert CHILD_NAME not in str(verified)

    (hook,) = [
        h
        for h in stack.hooks.at(subscription["endpoint"])
        if h.payload["data"]["document"]["number"] == number
    ]
    assert hook.payload["data"]["certificate"]["appeal_deadline"] == certificate["appeal_deadline"]

    to_family = [m for m in stack.smtp.sink.to(PARENT) if number in str(m.message["Subject"])]
    assert len(to_family) == 1
    (attachment,) = list(to_family[0].message.iter_attachments())
    assert attachment.get_content() == pdf.content
    assert len([m for m in stack.smtp.sink.to(LA) if number in str(m.message["Subject"])]) == 1

    # The referral lists the document once the workflow has projected the dispatch report,
    # a moment after the deliveries themselves are recorded.
    async def listed() -> dict[str, Any] | None:
        read: dict[str, Any] = await ok(await stack.http.get(f"/v1/referrals/{rid}"))
        return read if read["documents"] else None

    read = await eventually(listed)
    assert [d["number"] for d in read["documents"]] == [number]


async def test_day_30_deemed_certificate_arrives_by_email_and_webhook(
    stack: Stack, subscription: dict[str, Any]
) -> None:
    """Mediation asked for 31 days ago with no meeting: the certificate goes out at once."""
    now = today()
    asked = now - timedelta(days=31)
    letter = now - timedelta(days=40)
    body = mediation_body(
        received_on=(now - timedelta(days=35)).isoformat(),
        decision={"type": "refusal_to_assess", "letter_date": letter.isoformat()},
    )
    referral = await create(stack.http, body)
    rid = referral["id"]
    after = await ok(await command(stack.http, rid, "request-mediation", {"on": asked.isoformat()}))
    certificate = after["certificate"]
    assert certificate["kind"] == "deemed"
    assert certificate["issued_on"] == now.isoformat()
    assert after["deadlines"]["mediation_must_be_arranged_by"]["state"] == "breached"
    assert after["status"] == "arranging_meeting"  # stays open for a later meeting
    expected = await ok(
        await stack.http.post(
            "/v1/timescales",
            json={
                "decision_letter_date": letter.isoformat(),
                "certificate_issue_date": now.isoformat(),
            },
        )
    )
    assert certificate["appeal_deadline"] == expected["appeal_deadline"]

    number = certificate["number"]
    await eventually(lambda: delivered(stack, rid, number))
    (mail,) = [m for m in stack.smtp.sink.to(PARENT) if number in str(m.message["Subject"])]
    (attachment,) = list(mail.message.iter_attachments())
    text = pdf_text(attachment.get_content())
    assert "Mediation was not held within 30 days" in text
    assert f"by 5pm on {long_date(date.fromisoformat(expected['appeal_deadline']))}" in text
    hooks = [
        h
        for h in stack.hooks.at(subscription["endpoint"])
        if h.payload["data"]["document"]["number"] == number
    ]
    assert len(hooks) == 1
    assert hooks[0].payload["type"] == "certificate.issued"
    assert hooks[0].payload["data"]["certificate"]["kind"] == "deemed"
    assert hooks[0].payload["data"]["certificate"]["appeal_deadline"] == expected["appeal_deadline"]
    await ok(await command(stack.http, rid, "withdraw"))
