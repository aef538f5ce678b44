"""dispatch_document against a real SMTP server and a real webhook receiver, on a real database."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import date

import icalendar
import pytest
from pypdf import PdfReader
from sqlmodel import select
from temporalio.exceptions import ApplicationError

from models.messages import DocumentRequest
from models.store.document_tables import DocumentCopyRow, DocumentRow
from models.store.tables import ProviderRow
from tests.conftest import Database
from tests.documents import referrals as R
from tests.documents.conftest import (
    MAIL_FROM,
    PROVIDER_EMAIL,
    Receiver,
    SmtpServer,
    deliveries,
    document_activities,
    plain_text,
    project,
    subscribe,
)
from tests.factories import CHILD_NAME, mediation_body

FAMILY = "grace.parent@example.org"
LA = "sam.officer@example.gov.uk"
PERSONAL = (CHILD_NAME, "Grace", "Testparent", FAMILY, LA, "Sam Officer", "2015-03-09")


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def certificate_request(referral_id: str, number: str, key: str = "wf:effect-1") -> DocumentRequest:
    return DocumentRequest(
        key=key,
        referral_id=referral_id,
        kind="certificate",
        number=number,
        recipients=("family", "la"),
    )


async def test_certificate_is_emailed_to_family_and_la_and_sent_to_webhooks_once(
    db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    referral = R.deemed()
    await project(db, referral)
    await subscribe(db, receiver, "all")
    await subscribe(db, receiver, "other-council", local_authority="E10000016")
    await subscribe(db, receiver, "status-only", event_types=("referral.closed",))
    certificate = referral.certificates[0]
    acts = document_activities(db, smtp.mailer())

    report = await acts.dispatch_document(certificate_request(referral.id, certificate.number))

    # The stored document is the PDF that was sent, with its SHA-256.
    async with db.sessionmaker() as session:
        stored = await session.get(DocumentRow, certificate.number)
    assert stored is not None
    assert report.sha256 == stored.sha256 == hashlib.sha256(stored.content).hexdigest()
    assert report.kind == "certificate"
    assert report.issued_on == certificate.issued_on
    assert stored.issuer.startswith("Kids")
    assert {(d.recipient, d.channel, d.status) for d in report.deliveries} == {
        ("family", "email", "sent"),
        ("la", "email", "sent"),
        ("whsub_all", "webhook", "sent"),
    }

    # Two emails, one per recipient, each alone on its To:, the PDF attached.
    assert len(smtp.sink.messages()) == 2
    for address in (FAMILY, LA):
        (received,) = smtp.sink.to(address)
        message = received.message
        assert message["To"] == address
        assert received.mail_from == MAIL_FROM
        assert message["Subject"] == f"Mediation certificate {certificate.number}"
        assert message["Reply-To"] == PROVIDER_EMAIL
        assert CHILD_NAME not in plain_text(message)
        (attachment,) = list(message.iter_attachments())
        assert attachment.get_content_type() == "application/pdf"
        # The family gets the document of record; the council its own copy, stored once.
        async with db.sessionmaker() as session:
            copy = await session.get(DocumentCopyRow, (certificate.number, "la"))
        assert copy is not None
        sent = stored.content if address == FAMILY else copy.content
        assert attachment.get_content() == sent
        text = " ".join(pdf_text(attachment.get_content()).split())
        assert certificate.number in text
        assert "Mediation was not held within 30 days" in text
        assert "Date of issue: Monday 28 December 2026" in text
        # RULES.md W5 (issued 28 Dec 2026): appeal by 28 Jan 2027, by 5pm.
        assert "by 5pm on Thursday 28 January 2027" in text
    body = plain_text(smtp.sink.to(FAMILY)[0].message)
    assert "Your mediation certificate is attached." in body
    assert "Appeal deadline: 5pm on Thursday 28 January 2027" in body

    # One signed webhook to the matching subscription; nothing personal in it.
    assert receiver.bad_signatures == 0
    (hook,) = receiver.at("all")
    assert hook.payload["type"] == "certificate.issued"
    data = hook.payload["data"]
    assert data["document"]["number"] == certificate.number
    assert data["document"]["sha256"] == stored.sha256
    assert data["document"]["verify_url"].endswith(f"/v1/documents/{certificate.number}/verify")
    assert data["certificate"]["appeal_deadline"] == "2027-01-28"
    assert data["certificate"]["kind"] == "deemed"
    assert not any(p in hook.body.decode() for p in PERSONAL)
    assert receiver.at("other-council") == []
    assert receiver.at("status-only") == []


async def test_retried_or_replayed_dispatch_sends_nothing_twice_and_reuses_the_bytes(
    db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    referral = R.declined()
    await project(db, referral)
    await subscribe(db, receiver, "all")
    number = referral.certificates[0].number
    acts = document_activities(db, smtp.mailer())
    first = await acts.dispatch_document(certificate_request(referral.id, number))
    ids = sorted(m.message["Message-ID"] for m in smtp.sink.messages())

    # The provider's details change: a retry must still send (nothing) from the stored bytes.
    async with db.sessionmaker() as session:
        kids = (await session.exec(select(ProviderRow))).first()
        assert kids is not None
        kids.name = "Renamed Provider"
        session.add(kids)
        await session.commit()
    again = await acts.dispatch_document(certificate_request(referral.id, number))
    replay = await document_activities(db, smtp.mailer()).dispatch_document(
        certificate_request(referral.id, number, key="wf:effect-1")
    )

    assert again == first == replay
    assert sorted(m.message["Message-ID"] for m in smtp.sink.messages()) == ids
    assert len(smtp.sink.messages()) == 2
    assert len(receiver.at("all")) == 1
    rows = await deliveries(db, referral.id)
    assert {r.status for r in rows} == {"sent"}
    assert all(r.attempts == 1 for r in rows)


async def test_invitation_carries_the_calendar_and_records_manual_recipients(
    db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    referral = R.booked(link="https://meet.example.org/room-1")
    await project(db, referral)
    await subscribe(db, receiver, "bookings", event_types=("meeting.booked",))
    meeting = referral.meetings[-1]
    number = R.number("MI")
    acts = document_activities(db, smtp.mailer())
    report = await acts.dispatch_document(
        DocumentRequest(
            key="wf:effect-2",
            referral_id=referral.id,
            kind="invitation",
            number=number,
            meeting_id=meeting.id,
            recipients=("family", "supporter", "la", "senco", "nobody"),
        )
    )
    outcome = {d.recipient: (d.channel, d.status) for d in report.deliveries}
    assert outcome["family"] == ("email", "sent")
    assert outcome["la"] == ("email", "sent")
    assert outcome["senco"] == ("email", "sent")
    assert outcome["supporter"] == ("none", "manual")  # a supporter without contact details
    assert outcome["nobody"] == ("none", "failed")  # an unknown id: failed and escalated
    assert outcome["whsub_bookings"] == ("webhook", "sent")

    (received,) = smtp.sink.to(FAMILY)
    attachments = {a.get_content_type(): a for a in received.message.iter_attachments()}
    assert set(attachments) == {"application/pdf", "text/calendar"}
    calendar = icalendar.Calendar.from_ical(attachments["text/calendar"].get_content())
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == meeting.starts_at
    assert event.decoded("DTEND") == meeting.ends_at
    assert str(event["URL"]) == "https://meet.example.org/room-1"
    text = pdf_text(attachments["application/pdf"].get_content())
    assert "Monday 16 March 2026" in text
    assert "10am to 12:30pm (UK time)" in text
    assert "Lin Friend (friend)" in text
    assert "Step-free access" in text
    assert received.message["Subject"] == (
        "Invitation: mediation meeting on Monday 16 March 2026 at 10am"
    )
    (escalation,) = smtp.sink.to(PROVIDER_EMAIL)
    assert referral.id in escalation.message["Subject"]
    (hook,) = receiver.at("bookings")
    assert hook.payload["data"]["meeting"]["starts_at"] == meeting.starts_at.isoformat()
    assert "meet.example.org" not in hook.body.decode()


async def test_family_who_prefers_post_is_recorded_for_manual_sending(
    db: Database, smtp: SmtpServer
) -> None:
    body = mediation_body(
        referrer={
            "role": "parent",
            "contact": {
                "name": "Pat Postal",
                "preferred": "post",
                "postal_address": "1 Example Street, Hertford",
            },
        },
        decision={"type": "refusal_to_assess", "letter_date": "2026-01-14"},
    )
    referral = R.apply(R.opened(body, date(2026, 3, 2)), date(2026, 3, 2), "information_session")
    referral = R.apply(referral, date(2026, 3, 2), "decline_mediation")
    await project(db, referral)
    report = await document_activities(db, smtp.mailer()).dispatch_document(
        certificate_request(referral.id, referral.certificates[0].number)
    )
    outcome = {d.recipient: (d.channel, d.status, d.detail) for d in report.deliveries}
    assert outcome["family"] == ("post", "manual", "prefers post: send by hand")
    assert outcome["la"][1] == "sent"
    assert [m.rcpt_tos for m in smtp.sink.messages()] == [[LA]]


async def test_refused_address_fails_permanently_and_tells_the_provider_once(
    db: Database, smtp: SmtpServer
) -> None:
    referral = R.declined()
    await project(db, referral)
    smtp.sink.refuse[FAMILY] = 550
    acts = document_activities(db, smtp.mailer())
    number = referral.certificates[0].number
    report = await acts.dispatch_document(certificate_request(referral.id, number))
    outcome = {d.recipient: (d.status, d.detail) for d in report.deliveries}
    assert outcome["family"] == ("failed", "SMTP 550: recipient refused")
    assert outcome["la"] == ("sent", None)

    (escalation,) = smtp.sink.to(PROVIDER_EMAIL)
    text = plain_text(escalation.message)
    assert referral.id in text
    assert number in text
    assert "SMTP 550" in text
    assert not any(p in text for p in PERSONAL)

    # Retried: no new attempt at the refused address, no second escalation.
    await acts.dispatch_document(certificate_request(referral.id, number))
    assert len(smtp.sink.to(PROVIDER_EMAIL)) == 1
    assert len(smtp.sink.messages()) == 2
    rows = {r.recipient: r for r in await deliveries(db, referral.id)}
    assert rows["family"].status == "failed"
    assert rows["family"].attempts == 1
    assert rows["provider"].purpose == "escalation"
    assert rows["provider"].status == "sent"


async def test_temporary_smtp_failure_raises_for_a_retry_that_then_sends_once(
    db: Database, smtp: SmtpServer
) -> None:
    referral = R.declined()
    await project(db, referral)
    smtp.sink.temp_fail_data = 1  # the first message gets 451
    acts = document_activities(db, smtp.mailer())
    request = certificate_request(referral.id, referral.certificates[0].number)
    with pytest.raises(ApplicationError) as failure:
        await acts.dispatch_document(request)
    assert not failure.value.non_retryable
    # One exactly-once path for emails and webhooks: the retry reason names the delivery.
    assert "document to family: SMTP 451" in str(failure.value)
    assert len(smtp.sink.messages()) == 1  # the other recipient was not held up

    report = await acts.dispatch_document(request)
    assert {d.status for d in report.deliveries} == {"sent"}
    assert sorted(m.rcpt_tos[0] for m in smtp.sink.messages()) == sorted([FAMILY, LA])
    assert len({m.message["Message-ID"] for m in smtp.sink.messages()}) == 2


async def test_webhook_answers_decide_between_retry_and_failure(
    db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    referral = R.declined()
    await project(db, referral)
    await subscribe(db, receiver, "busy")
    await subscribe(db, receiver, "throttled")
    await subscribe(db, receiver, "gone")
    receiver.answers["busy"] = [503]
    receiver.answers["throttled"] = [429]
    receiver.answers["gone"] = [410]
    acts = document_activities(db, smtp.mailer())
    request = certificate_request(referral.id, referral.certificates[0].number)

    with pytest.raises(ApplicationError) as failure:
        await acts.dispatch_document(request)
    assert "webhook whsub_busy: HTTP 503" in str(failure.value)
    assert "webhook whsub_throttled: HTTP 429" in str(failure.value)
    report = await acts.dispatch_document(request)
    outcome = {d.recipient: (d.status, d.detail) for d in report.deliveries}
    assert outcome["whsub_busy"] == ("sent", None)
    assert outcome["whsub_throttled"] == ("sent", None)
    assert outcome["whsub_gone"] == ("failed", "HTTP 410")
    assert len(receiver.at("busy")) == len(receiver.at("throttled")) == 1
    assert receiver.at("busy")[0].webhook_id != receiver.at("throttled")[0].webhook_id
    (escalation,) = smtp.sink.to(PROVIDER_EMAIL)
    assert "HTTP 410" in plain_text(escalation.message)


async def test_disabled_subscription_receives_nothing(
    db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    referral = R.declined()
    await project(db, referral)
    await subscribe(db, receiver, "off", active=False)
    report = await document_activities(db, smtp.mailer()).dispatch_document(
        certificate_request(referral.id, referral.certificates[0].number)
    )
    assert all(d.channel == "email" for d in report.deliveries)
    assert receiver.delivered == []


async def test_agreement_lists_actions_owners_and_due_dates(
    db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    referral = R.signed()
    await project(db, referral)
    await subscribe(db, receiver, "agreements", event_types=("agreement.signed",))
    number = R.number("AG")
    report = await document_activities(db, smtp.mailer()).dispatch_document(
        DocumentRequest(
            key="wf:effect-3",
            referral_id=referral.id,
            kind="agreement",
            number=number,
            recipients=("family", "la"),
        )
    )
    assert report.issued_on == date(2026, 3, 16)
    (received,) = smtp.sink.to(FAMILY)
    (attachment,) = list(received.message.iter_attachments())
    text = pdf_text(attachment.get_content())
    assert number in text
    assert "Tell the family the assessment will go ahead" in text
    # reg 44(2)(b): notify within 2 weeks of the agreement (16 Mar 2026 → 30 Mar 2026).
    assert "Due by: Monday 30 March 2026" in text
    assert "Due by: Wednesday 1 April 2026" in text
    assert "Oakfield Primary School" in text
    (hook,) = receiver.at("agreements")
    actions = hook.payload["data"]["agreement"]["actions"]
    assert [(a["owner"], a["due_on"]) for a in actions] == [
        ("la", "2026-03-30"),
        ("senco", "2026-04-01"),
    ]
    assert "Tell the family" not in json.dumps(hook.payload)


async def test_a_number_that_is_not_in_the_referral_is_refused_for_good(
    db: Database, smtp: SmtpServer
) -> None:
    referral = R.declined()
    await project(db, referral)
    with pytest.raises(ApplicationError) as failure:
        await document_activities(db, smtp.mailer()).dispatch_document(
            certificate_request(referral.id, "MC-FFFF-FFFF-FFFF-FFFF")
        )
    assert failure.value.non_retryable
    assert failure.value.type == "DocumentUnavailable"
    assert smtp.sink.messages() == []


async def test_webhook_to_a_host_outside_the_allowlist_fails_without_connecting() -> None:
    from models.adapters.delivery import PermanentFailure
    from models.adapters.webhooks import WebhookSender

    sender = WebhookSender(timeout=1, allowed_hosts=frozenset({"127.0.0.1"}))
    with pytest.raises(PermanentFailure, match="ALLOWED_HOSTS"):
        await sender.send("https://203.0.113.7/hook", "whsec_" + "A" * 32, "msg_1", b"{}")
