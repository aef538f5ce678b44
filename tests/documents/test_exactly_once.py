"""Exactly once: a send killed mid-flight, a retry, and two attempts racing, on SQLite and
PostgreSQL, against a real SMTP server that can stall at the worst moment."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from temporalio.exceptions import ApplicationError

from activities.documents import DocumentActivities
from models.messages import DispatchReport, DocumentRequest
from tests.conftest import Database
from tests.documents import referrals as R
from tests.documents.conftest import (
    Receiver,
    SmtpServer,
    deliveries,
    document_activities,
    project,
    subscribe,
)

FAMILY = "grace.parent@example.org"
LEASE = 1.5  # seconds: longer than a send may take here (send_timeout 1.0)


def request(referral_id: str, number: str) -> DocumentRequest:
    return DocumentRequest(
        key="referral-x:effect-1",
        referral_id=referral_id,
        kind="certificate",
        number=number,
        recipients=("family",),
    )


async def wait_for(predicate: object, seconds: float = 10.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def retry_until_done(acts: DocumentActivities, req: DocumentRequest) -> DispatchReport:
    """What Temporal does with a retryable failure: try again after a backoff."""
    for _ in range(100):
        try:
            return await acts.dispatch_document(req)
        except ApplicationError as exc:
            if exc.non_retryable:
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("never succeeded")


async def test_worker_killed_mid_send_then_retried_delivers_exactly_one(
    any_db: Database, smtp: SmtpServer
) -> None:
    referral = R.declined()
    await project(any_db, referral)
    number = referral.certificates[0].number
    # The server stalls in DATA before accepting; the attempt is killed meanwhile.
    smtp.sink.stall_before_accept = 30.0
    acts = document_activities(any_db, smtp.mailer(timeout=1.0), send_timeout=1.0, lease=LEASE)
    attempt = asyncio.create_task(acts.dispatch_document(request(referral.id, number)))
    await wait_for(smtp.sink.data_started.is_set)
    attempt.cancel()  # the worker dies: no code after the send runs
    with contextlib.suppress(asyncio.CancelledError):
        await attempt

    (row,) = await deliveries(any_db, referral.id)
    assert row.status == "sending"  # the ledger cannot know whether the server accepted

    # A retry inside the lease does not send a second copy: it waits (raises, retried later).
    with pytest.raises(ApplicationError, match="another attempt is sending"):
        await acts.dispatch_document(request(referral.id, number))
    assert smtp.sink.messages() == []

    report = await retry_until_done(acts, request(referral.id, number))
    assert [d.status for d in report.deliveries] == ["sent"]
    (received,) = smtp.sink.messages()
    (row,) = await deliveries(any_db, referral.id)
    assert row.status == "sent"
    assert row.attempts == 2
    assert received.message["Message-ID"] == row.message_id

    # And nothing more however often it is retried.
    await acts.dispatch_document(request(referral.id, number))
    assert len(smtp.sink.messages()) == 1


async def test_the_remaining_window_resends_with_the_same_message_id(
    any_db: Database, smtp: SmtpServer
) -> None:
    """Accepted by the server, killed before the row said so: the retry sends the same message
    again (same Message-ID), which is what a receiver dedupes on. This is the documented window."""
    referral = R.declined()
    await project(any_db, referral)
    number = referral.certificates[0].number
    smtp.sink.stall_after_accept = 30.0
    acts = document_activities(any_db, smtp.mailer(timeout=1.0), send_timeout=1.0, lease=LEASE)
    attempt = asyncio.create_task(acts.dispatch_document(request(referral.id, number)))
    await wait_for(lambda: len(smtp.sink.messages()) == 1)
    attempt.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await attempt

    await retry_until_done(acts, request(referral.id, number))
    first, second = smtp.sink.messages()
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert first.raw == second.raw  # byte for byte the same message
    assert len({m.message["Message-ID"] for m in smtp.sink.messages()}) == 1


async def test_racing_attempts_send_once(
    any_db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    referral = R.declined()
    await project(any_db, referral)
    await subscribe(any_db, receiver, "all")
    number = referral.certificates[0].number
    acts = [document_activities(any_db, smtp.mailer()) for _ in range(4)]
    results = await asyncio.gather(
        *(a.dispatch_document(request(referral.id, number)) for a in acts),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException):
            assert isinstance(result, ApplicationError)
            assert not result.non_retryable
    final = await retry_until_done(acts[0], request(referral.id, number))
    assert {d.status for d in final.deliveries} == {"sent"}
    assert len(smtp.sink.messages()) == 1
    assert len(receiver.at("all")) == 1
    assert all(row.attempts == 1 for row in await deliveries(any_db, referral.id))


async def test_webhook_refused_for_now_is_retried_with_the_same_webhook_id(
    any_db: Database, smtp: SmtpServer, receiver: Receiver
) -> None:
    referral = R.declined()
    await project(any_db, referral)
    await subscribe(any_db, receiver, "slow")
    number = referral.certificates[0].number
    acts = document_activities(any_db, smtp.mailer(), send_timeout=1.0, lease=LEASE)
    receiver.answers["slow"] = [503]  # first delivery refused for now
    with pytest.raises(ApplicationError):
        await acts.dispatch_document(request(referral.id, number))
    report = await retry_until_done(acts, request(referral.id, number))
    assert {d.status for d in report.deliveries} == {"sent"}
    (hook,) = receiver.at("slow")
    rows = {r.channel: r for r in await deliveries(any_db, referral.id)}
    assert rows["webhook"].message_id == hook.webhook_id
    assert rows["webhook"].attempts == 2
