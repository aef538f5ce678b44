"""Webhooks that cannot be aimed inward, and that never hold a case open: every send checks
the addresses it resolves to, retries end after a window, a subscriber that keeps failing is
disabled and the provider told; secrets are sealed at rest with the codec key."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from models.adapters.codec import Keyring
from models.adapters.delivery import PermanentFailure
from models.adapters.secrets import is_sealed, unseal
from models.adapters.webhooks import WebhookSender
from models.store.document_tables import WebhookSubscriberHealthRow, WebhookSubscriptionRow
from models.store.subscriptions import seal_webhook_secrets
from tests.conftest import Database, free_port
from tests.documents import referrals as R
from tests.documents.conftest import (
    PROVIDER_EMAIL,
    Receiver,
    SmtpServer,
    deliveries,
    document_activities,
    plain_text,
    project,
    subscribe,
)
from tests.documents.test_dispatch import certificate_request

SECRET = "whsec_" + "A" * 44


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:{port}/hook",  # a name: resolved at send time, to 127.0.0.1
        "http://127.0.0.1:{port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "http://[fd00:ec2::254]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0:{port}/hook",
    ],
)
async def test_a_send_to_an_internal_address_is_refused_without_connecting_when_not_allowed(
    receiver: Receiver, url: str
) -> None:
    port = receiver.base_url.rsplit(":", 1)[1]
    receiver.secrets["hook"] = SECRET
    sender = WebhookSender(timeout=2)  # production's policy: public addresses only
    with pytest.raises(PermanentFailure, match="internal"):
        await sender.send(url.format(port=port), SECRET, "msg_1", b"{}")
    assert receiver.delivered == []


async def test_a_send_connects_to_the_address_it_checked_with_the_url_s_host_when_allowed(
    receiver: Receiver,
) -> None:
    """An allowed name is resolved once, checked, and connected to by address; the request
    still names the URL's host (and, for https, its TLS name), and the signature verifies."""
    port = receiver.base_url.rsplit(":", 1)[1]
    receiver.secrets["named"] = SECRET
    sender = WebhookSender(timeout=5, allowed_hosts=["127.0.0.0/8", "::1"], allow_public=False)
    await sender.send(f"http://localhost:{port}/hooks/named", SECRET, "msg_2", b'{"a":1}')
    (delivered,) = receiver.at("named")
    assert delivered.webhook_id == "msg_2"


async def test_a_dead_endpoint_fails_for_good_after_the_retry_window_and_the_provider_is_told(
    db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    referral = R.declined()
    await project(db, referral)
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    await subscribe(db, receiver, "dead", event_types=("certificate.issued",), url=dead)
    acts = document_activities(db, smtp.mailer(), webhook_retry_window=timedelta(seconds=1))
    request = certificate_request(referral.id, referral.certificates[0].number)
    with pytest.raises(Exception, match="will be retried"):
        await acts.dispatch_document(request)  # within the window: Temporal retries
    await asyncio.sleep(1.2)

    report = await acts.dispatch_document(request)  # past it: given up, nothing raised

    outcome = {d.recipient: d for d in report.deliveries}
    assert outcome["whsub_dead"].status == "failed"
    assert outcome["whsub_dead"].detail is not None
    assert outcome["whsub_dead"].detail.startswith("gave up after 2 attempts")
    told = [m for m in smtp.sink.to(PROVIDER_EMAIL) if "whsub_dead" in plain_text(m.message)]
    assert len(told) == 1


async def test_a_failing_subscriber_is_disabled_and_the_provider_told_when_over_the_limit(
    db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    row = await subscribe(db, receiver, "gone", event_types=("certificate.issued",))
    receiver.answers["gone"] = [410, 410, 410]
    acts = document_activities(db, smtp.mailer(), webhook_disable_after=2)
    referrals = [R.declined() for _ in range(3)]
    for referral in referrals:
        await project(db, referral)
    for referral in referrals[:2]:
        await acts.dispatch_document(
            certificate_request(referral.id, referral.certificates[0].number, key=referral.id)
        )
    async with db.sessionmaker() as session:
        subscription = await session.get(WebhookSubscriptionRow, row.id)
        health = await session.get(WebhookSubscriberHealthRow, row.id)
    assert subscription is not None
    assert not subscription.active
    assert subscription.disabled_at is not None
    assert health is not None
    assert health.disabled_reason == "disabled after 2 deliveries in a row failed"
    disabled = [m for m in smtp.sink.to(PROVIDER_EMAIL) if "disabled" in m.message["Subject"]]
    assert len(disabled) == 1
    assert row.id in plain_text(disabled[0].message)

    third = referrals[2]
    report = await acts.dispatch_document(
        certificate_request(third.id, third.certificates[0].number, key=third.id)
    )
    assert all(d.channel == "email" for d in report.deliveries)  # no longer sent to it
    assert [r for r in await deliveries(db, third.id) if r.channel == "webhook"] == []


async def test_webhook_secrets_are_sealed_at_rest_and_old_ones_sealed_when_the_worker_starts(
    db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    keyring = Keyring({"k1": b"\x01" * 32}, "k1")
    legacy = await subscribe(db, receiver, "legacy")  # stored in plain, as before sealing
    assert await seal_webhook_secrets(db.sessionmaker, keyring) == 1
    assert await seal_webhook_secrets(db.sessionmaker, keyring) == 0
    async with db.sessionmaker() as session:
        stored = await session.get(WebhookSubscriptionRow, legacy.id)
    assert stored is not None
    assert is_sealed(stored.secret)
    assert receiver.secrets["legacy"] not in stored.secret
    assert unseal(keyring, stored.secret, legacy.id) == receiver.secrets["legacy"]
    with pytest.raises(ValueError, match="not configured"):
        unseal(Keyring({"k2": b"\x02" * 32}, "k2"), stored.secret, legacy.id)

    # The worker opens it with the codec key and signs with the original secret.
    referral = R.declined()
    await project(db, referral)
    acts = document_activities(db, smtp.mailer(), keyring=keyring)
    await acts.dispatch_document(certificate_request(referral.id, referral.certificates[0].number))
    (delivered,) = receiver.at("legacy")
    assert receiver.bad_signatures == 0  # verified with the original secret
    assert delivered.payload["type"] == "certificate.issued"
