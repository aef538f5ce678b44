"""The documents and webhook-subscription endpoints over real HTTP (uvicorn), real database."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from api.keys import ALL_SCOPES, COUNCIL_WIDE_SCOPES, create_key
from api.main import create_app
from models.messages import DocumentRequest
from models.store.tables import LocalAuthorityRow
from tests.conftest import Database, free_port, make_settings, serve_api
from tests.documents import referrals as R
from tests.documents.conftest import (
    Receiver,
    SmtpServer,
    document_activities,
    project,
)
from tests.factories import CHILD_NAME

PROBLEM = "application/problem+json"


@pytest.fixture
async def api(db: Database) -> AsyncIterator[str]:
    port = free_port()
    settings = make_settings(database_url=db.url, api_port=port, temporal_address="127.0.0.1:1")
    async with serve_api(create_app(settings), port) as base_url:
        yield base_url


async def client(
    db: Database, base_url: str, *, scopes: frozenset[str] = ALL_SCOPES, councils: Any = None
) -> httpx.AsyncClient:
    key = await create_key(
        db.sessionmaker, name="back-office", scopes=scopes, local_authorities=councils
    )
    auth = {"Authorization": f"Bearer {key.token}"}
    return httpx.AsyncClient(base_url=base_url, timeout=10, headers=auth)


@pytest.fixture
async def http(db: Database, api: str) -> AsyncIterator[httpx.AsyncClient]:
    async with await client(db, api) as http:
        yield http


async def issued(db: Database, smtp: SmtpServer) -> tuple[str, str]:
    referral = R.declined()
    await project(db, referral)
    number = referral.certificates[0].number
    await document_activities(db, smtp.mailer()).dispatch_document(
        DocumentRequest(
            key="wf:effect-1",
            referral_id=referral.id,
            kind="certificate",
            number=number,
            recipients=("family", "la"),
        )
    )
    return referral.id, number


async def test_pdf_is_served_byte_for_byte_and_listed_with_its_deliveries(
    db: Database, smtp: SmtpServer, http: httpx.AsyncClient
) -> None:
    referral_id, number = await issued(db, smtp)
    (sent,) = smtp.sink.to("grace.parent@example.org")
    (attachment,) = list(sent.message.iter_attachments())

    pdf = await http.get(f"/v1/documents/{number}")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content == attachment.get_content()
    digest = hashlib.sha256(pdf.content).hexdigest()
    assert pdf.headers["etag"] == f'"{digest}"'
    assert pdf.content.startswith(b"%PDF-")

    listing = (await http.get(f"/v1/referrals/{referral_id}/documents")).json()
    (document,) = listing["documents"]
    assert document["number"] == number
    assert document["type"] == "certificate"
    assert document["kind"] == "declined_mediation"
    assert document["sha256"] == digest
    assert document["issued_on"] == "2026-03-02"
    assert document["verify_url"].endswith(f"/v1/documents/{number}/verify")
    assert {(d["recipient"], d["channel"], d["status"]) for d in document["deliveries"]} == {
        ("family", "email", "sent"),
        ("la", "email", "sent"),
    }
    everything = (await http.get(f"/v1/referrals/{referral_id}/deliveries")).json()
    assert len(everything["deliveries"]) == 2


async def test_verify_is_public_and_says_nothing_personal(
    db: Database, smtp: SmtpServer, http: httpx.AsyncClient
) -> None:
    _referral_id, number = await issued(db, smtp)
    pdf = (await http.get(f"/v1/documents/{number}")).content
    digest = hashlib.sha256(pdf).hexdigest()

    genuine = await http.get(f"/v1/documents/{number.lower()}/verify")
    assert genuine.status_code == 200
    body = genuine.json()
    assert body == {
        "number": number,
        "genuine": True,
        "type": "certificate",
        "title": "Mediation certificate",
        "issued_on": "2026-03-02",
        "issuer": "Kids SEND Mediation and Disagreement Resolution Service",
        "sha256": digest,
        "appeal_deadline": body["appeal_deadline"],  # a date, nothing personal
    }
    assert CHILD_NAME not in genuine.text
    assert "Grace" not in genuine.text

    matches = (await http.get(f"/v1/documents/{number}/verify", params={"sha256": digest})).json()
    assert matches["sha256_matches"] is True
    altered = hashlib.sha256(pdf + b" ").hexdigest()
    tampered = (await http.get(f"/v1/documents/{number}/verify", params={"sha256": altered})).json()
    assert tampered["sha256_matches"] is False

    async with httpx.AsyncClient(base_url=str(http.base_url)) as anonymous:
        public = await anonymous.get(f"/v1/documents/{number}/verify")
        assert public.status_code == 200
        assert public.json()["genuine"] is True
        assert (await anonymous.get(f"/v1/documents/{number}")).status_code == 401
    unknown = await http.get("/v1/documents/MC-0000-0000-0000-FFFF/verify")
    assert unknown.status_code == 200
    assert unknown.json() == {"number": "MC-0000-0000-0000-FFFF", "genuine": False}
    nonsense = await http.get("/v1/documents/hello/verify")
    assert nonsense.json()["genuine"] is False

    bad = await http.get(f"/v1/documents/{number}/verify", params={"sha256": "xyz"})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == PROBLEM


async def test_unknown_document_or_referral_is_a_404_problem(http: httpx.AsyncClient) -> None:
    missing = await http.get("/v1/documents/MC-0000-0000-0000-FFFF")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    referral = await http.get("/v1/referrals/00000000-0000-4000-8000-000000000000/documents")
    assert referral.status_code == 404
    assert referral.headers["content-type"] == PROBLEM


async def test_invitation_calendar_is_served(
    db: Database, smtp: SmtpServer, http: httpx.AsyncClient
) -> None:
    referral = R.booked()
    await project(db, referral)
    number = R.number("MI")
    await document_activities(db, smtp.mailer()).dispatch_document(
        DocumentRequest(
            key="wf:effect-1",
            referral_id=referral.id,
            kind="invitation",
            number=number,
            meeting_id=referral.meetings[-1].id,
            recipients=("family",),
        )
    )
    listing = (await http.get(f"/v1/referrals/{referral.id}/documents")).json()
    url = listing["documents"][0]["calendar_url"]
    ics = await http.get(url.replace("https://send-referrals.example.org", ""))
    assert ics.status_code == 200
    assert ics.headers["content-type"].startswith("text/calendar")
    assert ics.content.startswith(b"BEGIN:VCALENDAR\r\n")


async def test_subscriptions_created_listed_disabled_with_the_secret_shown_once(
    db: Database, smtp: SmtpServer, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    created = await http.post(
        "/v1/webhook-subscriptions",
        json={
            "url": receiver.url("api"),
            "event_types": ["certificate.issued", "referral.closed"],
            "local_authority": "E10000015",
            "description": "Case system",
        },
        headers={"Idempotency-Key": "sub-1"},
    )
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["secret"].startswith("whsec_")
    assert sub["event_types"] == ["certificate.issued", "referral.closed"]
    again = await http.post(
        "/v1/webhook-subscriptions",
        json={
            "url": receiver.url("api"),
            "event_types": ["certificate.issued", "referral.closed"],
            "local_authority": "E10000015",
            "description": "Case system",
        },
        headers={"Idempotency-Key": "sub-1"},
    )
    assert again.json()["id"] == sub["id"]  # the same subscription, not a second one

    listed = (await http.get("/v1/webhook-subscriptions")).json()["items"]
    assert [s["id"] for s in listed] == [sub["id"]]
    assert "secret" not in listed[0]
    one = (await http.get(f"/v1/webhook-subscriptions/{sub['id']}")).json()
    assert "secret" not in one
    assert one["active"] is True

    # It works: the receiver verifies the signature with the secret it was given.
    receiver.secrets["api"] = sub["secret"]
    _referral_id, number = await issued(db, smtp)
    (hook,) = receiver.at("api")
    assert hook.payload["data"]["document"]["number"] == number
    assert receiver.bad_signatures == 0
    history = (await http.get(f"/v1/webhook-subscriptions/{sub['id']}/deliveries")).json()
    assert [(d["status"], d["event_type"]) for d in history] == [("sent", "certificate.issued")]

    assert (await http.delete(f"/v1/webhook-subscriptions/{sub['id']}")).status_code == 204
    assert (await http.delete(f"/v1/webhook-subscriptions/{sub['id']}")).status_code == 204
    disabled = (await http.get(f"/v1/webhook-subscriptions/{sub['id']}")).json()
    assert disabled["active"] is False
    assert disabled["disabled_at"] is not None
    active = (await http.get("/v1/webhook-subscriptions", params={"active": True})).json()
    assert active["items"] == []
    missing = await http.delete("/v1/webhook-subscriptions/whsub_nope")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:9/x", "event_types": ["nope"]}, "body.event_types.0"),
        ({"url": "http://127.0.0.1:9/x", "event_types": []}, "body.event_types"),
        ({"url": "not a url"}, "body.url"),
        ({"url": "http://127.0.0.1:9/x", "secret": "mine"}, "body.secret"),
        ({"url": "http://127.0.0.1:9/x", "local_authority": "E99999999"}, "body.local_authority"),
    ],
)
async def test_invalid_subscription_is_a_422_naming_the_field(
    http: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await http.post("/v1/webhook-subscriptions", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_a_key_for_another_council_sees_neither_documents_nor_its_subscriptions(
    db: Database, smtp: SmtpServer, api: str, http: httpx.AsyncClient
) -> None:
    referral_id, number = await issued(db, smtp)
    async with db.sessionmaker() as session:
        session.add(
            LocalAuthorityRow(
                code="E10000016",
                name="Kent County Council",
                icbs=[],
                provider_id="kids",
                created_at=datetime.now(UTC),
            )
        )
        await session.commit()
    limited = ALL_SCOPES - COUNCIL_WIDE_SCOPES
    async with await client(db, api, scopes=limited, councils=["E10000016"]) as other:
        assert (await other.get(f"/v1/documents/{number}")).status_code == 404
        assert (await other.get(f"/v1/referrals/{referral_id}/documents")).status_code == 403
        everywhere = await other.post(
            "/v1/webhook-subscriptions", json={"url": "http://127.0.0.1:9/x"}
        )
        assert everywhere.status_code == 403
        mine = await other.post(
            "/v1/webhook-subscriptions",
            json={"url": "http://127.0.0.1:9/x", "local_authority": "E10000016"},
        )
        assert mine.status_code == 201, mine.text
        herts = await http.post(
            "/v1/webhook-subscriptions",
            json={"url": "http://127.0.0.1:9/y", "local_authority": "E10000015"},
        )
        listed = (await other.get("/v1/webhook-subscriptions")).json()["items"]
        assert [s["id"] for s in listed] == [mine.json()["id"]]
        hidden = await other.get(f"/v1/webhook-subscriptions/{herts.json()['id']}")
        assert hidden.status_code == 404
    async with await client(db, api, scopes=frozenset({"referrals:read"})) as reader:
        denied = await reader.get("/v1/webhook-subscriptions")
        assert denied.status_code == 403
