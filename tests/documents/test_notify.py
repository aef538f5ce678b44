"""send_notification emails (once) and publish_events webhooks (once), on a real database."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select
from temporalio.exceptions import ApplicationError

from activities.notify import NotifyActivities, notification_text
from models.adapters.mail import OutboxMailer, SmtpMailer
from models.adapters.pdf import Issuer, long_date
from models.messages import EventRecord, NotificationRequest, PublishRequest
from models.store.tables import NotificationRow
from tests.conftest import Database, free_port
from tests.documents import referrals as R
from tests.documents.conftest import (
    PROVIDER_EMAIL,
    Receiver,
    SmtpServer,
    deliveries,
    notify_activities,
    plain_text,
    project,
    subscribe,
)
from tests.factories import CHILD_NAME, dr_body, mediation_body

FAMILY = "grace.parent@example.org"
TEMPLATES = (
    "dr_consent_request",
    "dr_consent_reminder",
    "dr_going_ahead",
    "dr_not_going_ahead",
    "mediation_requested_la",
    "icb_notification",
    "invitation_to_take_part",
    "supporter_welcome",
    "meeting_cancelled",
    "referral_withdrawn",
    "action_reminder",
    "action_overdue",
)


async def outbox(db: Database, referral_id: str) -> dict[str, str]:
    async with db.sessionmaker() as session:
        rows = await session.exec(
            select(NotificationRow).where(col(NotificationRow.referral_id) == referral_id)
        )
        return {row.recipient: row.status for row in rows.all()}


async def test_notification_is_emailed_once_per_recipient_and_outbox_shows_it(
    db: Database, smtp: SmtpServer
) -> None:
    referral = R.opened(dr_body(), date(2026, 3, 2))
    await project(db, referral)
    acts = notify_activities(db, smtp.mailer())
    respond_by = datetime.now(UTC).date() + timedelta(days=20)
    request = NotificationRequest(
        key=f"referral-{referral.id}:effect-1",
        referral_id=referral.id,
        template="dr_consent_request",
        recipients=("school", "la"),
        data={"respond_by": respond_by.isoformat()},  # never a date already past (below)
    )
    assert await acts.send_notification(request) == 2
    assert await acts.send_notification(request) == 0  # retried: nothing new, nothing resent

    messages = smtp.sink.messages()
    assert sorted(m.rcpt_tos[0] for m in messages) == [
        "head@oakfield.example.sch.uk",
        "sam.officer@example.gov.uk",
    ]
    message = messages[0].message
    assert message["Subject"] == "Will you take part in disagreement resolution?"
    text = plain_text(message)
    assert f"by {long_date(respond_by)}" in text
    assert f"Referral reference: {referral.id}" in text
    assert CHILD_NAME not in text
    assert "Grace" not in text
    assert await outbox(db, referral.id) == {"school": "sent", "la": "sent"}


async def test_recipient_preferring_phone_is_left_for_manual_contact(
    db: Database, smtp: SmtpServer
) -> None:
    body = dr_body()
    phone = {"name": "Kim Head", "phone": "01234 567890", "preferred": "phone"}
    body["parties"][0]["contact"] = phone
    referral = R.opened(body, date(2026, 3, 2))
    await project(db, referral)
    acts = notify_activities(db, smtp.mailer())
    request = NotificationRequest(
        key="k:effect-1",
        referral_id=referral.id,
        template="dr_consent_request",
        recipients=("school", "family"),
    )
    await acts.send_notification(request)
    assert [m.rcpt_tos for m in smtp.sink.messages()] == [[FAMILY]]
    assert await outbox(db, referral.id) == {"school": "manual", "family": "sent"}


async def test_bounced_notification_is_failed_and_escalated(db: Database, smtp: SmtpServer) -> None:
    referral = R.opened(dr_body(), date(2026, 3, 2))
    await project(db, referral)
    smtp.sink.refuse["head@oakfield.example.sch.uk"] = 550
    acts = notify_activities(db, smtp.mailer())
    request = NotificationRequest(
        key="k:effect-1", referral_id=referral.id, template="dr_going_ahead", recipients=("school",)
    )
    await acts.send_notification(request)
    await acts.send_notification(request)
    assert await outbox(db, referral.id) == {"school": "failed"}
    (escalation,) = smtp.sink.to(PROVIDER_EMAIL)
    assert "notification" in plain_text(escalation.message)


async def test_unreachable_smtp_server_raises_for_temporal_to_retry(db: Database) -> None:
    referral = R.opened(dr_body(), date(2026, 3, 2))
    await project(db, referral)
    acts = notify_activities(db, SmtpMailer("127.0.0.1", free_port(), starttls=False, timeout=1))
    request = NotificationRequest(
        key="k:effect-1", referral_id=referral.id, template="dr_going_ahead", recipients=("family",)
    )
    with pytest.raises(ApplicationError, match="SMTP unavailable") as failure:
        await acts.send_notification(request)
    assert not failure.value.non_retryable
    (row,) = await deliveries(db, referral.id)
    assert row.status == "pending"
    assert row.attempts == 1


@pytest.mark.parametrize("template", [*TEMPLATES, "something_new"])
def test_every_template_has_short_plain_text(template: str) -> None:
    issuer = Issuer(name="Kids", phone="03330 062 835", email=PROVIDER_EMAIL)
    data = {
        "respond_by": "2026-03-16",
        "arrange_by": "2026-04-01",
        "due_on": "2026-04-10",
        "starts_at": "2026-06-15T10:00:00+01:00",
        "action": "action-1",
        "reason": "every party declined",
    }
    subject, body = notification_text(template, data, "ref-1", issuer, "family")
    assert subject
    assert len(body) < 1200
    assert "Referral reference: ref-1" in body
    assert "03330 062 835" in body
    assert "{" not in body
    if template == "meeting_cancelled":
        assert "Monday 15 June 2026 at 10am" in body
    if template == "something_new":
        assert subject == "Update about referral ref-1"


async def test_without_smtp_mail_goes_to_eml_files_through_the_same_ledger(
    db: Database, tmp_path: Path
) -> None:
    referral = R.opened(dr_body(), date(2026, 3, 2))
    await project(db, referral)
    sink = OutboxMailer(tmp_path / "outbox")
    acts = notify_activities(db, sink)
    request = NotificationRequest(
        key="k:effect-1", referral_id=referral.id, template="dr_going_ahead", recipients=("family",)
    )
    await acts.send_notification(request)
    await acts.send_notification(request)
    (path,) = sink.messages()
    assert path.suffix == ".eml"
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == FAMILY
    assert message["Subject"] == "Disagreement resolution is going ahead"


def event(seq: int, type_: str, **data: Any) -> EventRecord:
    return EventRecord(
        seq=seq,
        type=type_,
        on=date(2026, 3, 2),
        at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        actor="api",
        data=data,
    )


async def test_status_events_go_to_subscribers_once_without_personal_data(
    db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    referral = R.declined()
    await project(db, referral)
    changes = ("referral.status_changed", "referral.closed")
    await subscribe(db, receiver, "status", event_types=changes)
    await subscribe(db, receiver, "breaches", event_types=("deadline.breached",))
    acts = notify_activities(db, smtp.mailer())
    request = PublishRequest(
        referral_id=referral.id,
        events=(
            event(1, "referral.created", route="mediation", status="x", notices=["n"]),
            event(2, "referral.status_changed", **{"from": "a", "to": "closed"}),
            event(3, "referral.closed", outcome="declined_mediation", note="free text"),
            event(4, "certificate.issued", number="MC-1"),  # documents publish their own
            event(5, "deadline.breached", deadline="certificate_due_by", rule="DL-02"),
        ),
    )
    assert await acts.publish_events(request) == 3
    assert await acts.publish_events(request) == 3  # replayed: the same three, none resent
    status = receiver.at("status")
    assert [d.payload["type"] for d in status] == ["referral.status_changed", "referral.closed"]
    assert status[0].payload["data"]["to"] == "closed"
    assert status[0].payload["data"]["seq"] == 2
    assert "note" not in status[1].payload["data"]
    assert "free text" not in status[1].body.decode()
    (breach,) = receiver.at("breaches")
    assert breach.payload["data"]["rule"] == "DL-02"
    assert len({d.webhook_id for d in receiver.delivered}) == 3
    assert smtp.sink.messages() == []


async def test_outbox_only_without_a_mailer(db: Database) -> None:
    referral = R.opened(dr_body(), date(2026, 3, 2))
    await project(db, referral)
    acts = NotifyActivities(db.sessionmaker)
    request = NotificationRequest(
        key="k:effect-1", referral_id=referral.id, template="dr_going_ahead", recipients=("family",)
    )
    assert await acts.send_notification(request) == 1
    assert await acts.publish_events(PublishRequest(referral_id=referral.id, events=())) == 0
    assert await outbox(db, referral.id) == {"family": "queued"}


INTERNAL = re.compile(r"RULES\.md|\bDL-\d|\b[AMW]\d{1,2}\b")


def test_notices_and_notification_texts_name_no_internal_rule_when_shown_to_people() -> None:
    # Received 4 months after the decision letter: the late-contact notice (RULES.md A6).
    body = mediation_body(decision={"type": "refusal_to_assess", "letter_date": "2026-01-20"})
    referral = R.opened(body, date(2026, 6, 1))
    assert "late_contact" in {n.code for n in referral.notices}
    texts = [n.message for n in referral.notices]
    issuer = Issuer(name="Kids", phone="0123", email="k@example.org")
    data = {"respond_by": "2026-06-15", "arrange_by": "2026-07-01", "due_on": "2026-07-01"}
    for template in (*TEMPLATES, "anything-else"):
        for recipient in ("family", "la"):
            texts += notification_text(template, data, "r-late", issuer, recipient)
    found = [t for t in texts if INTERNAL.search(t)]
    assert not found, found
