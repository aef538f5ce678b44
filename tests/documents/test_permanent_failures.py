"""Bad data in a registry never silently stops a legal document: an error no retry can cure
is a permanent failure (delivery ``failed``, the provider told, the metric counts it)."""

from __future__ import annotations

from sqlalchemy import update

from api.metrics import read_model_counts
from models.store.tables import ProviderRow, table_of
from tests.conftest import Database
from tests.documents import referrals as R
from tests.documents.conftest import (
    PROVIDER_EMAIL,
    SmtpServer,
    deliveries,
    document_activities,
    plain_text,
    project,
)
from tests.documents.test_dispatch import certificate_request

UNBUILDABLE = "the message could not be built (ValueError)"


async def test_a_message_that_cannot_be_built_fails_for_good_and_tells_the_provider_when_a_registry_name_holds_a_line_break(  # noqa: E501
    db: Database, smtp: SmtpServer
) -> None:
    # A provider row written before registries refused line breaks (or edited in the database).
    async with db.sessionmaker() as session:
        await session.exec(
            update(table_of(ProviderRow))
            .where(table_of(ProviderRow).c.id == "kids")
            .values(name="Kids\r\nBcc: someone@example.org")
        )
        await session.commit()
    referral = R.declined()
    await project(db, referral)
    acts = document_activities(db, smtp.mailer())
    number = referral.certificates[0].number

    report = await acts.dispatch_document(certificate_request(referral.id, number))  # no retry

    outcome = {d.recipient: (d.status, d.detail) for d in report.deliveries}
    assert outcome == {"family": ("failed", UNBUILDABLE), "la": ("failed", UNBUILDABLE)}
    told = smtp.sink.to(PROVIDER_EMAIL)
    assert len(told) == 2  # one per failed delivery, never a copy to the injected Bcc
    assert all(UNBUILDABLE in plain_text(m.message) for m in told)
    assert not smtp.sink.to("someone@example.org")
    rows = {r.recipient: r for r in await deliveries(db, referral.id)}
    assert rows["family"].status == rows["la"].status == "failed"
    assert rows["family"].attempts == 1
    counts = await read_model_counts(db.sessionmaker)
    assert counts.dispatch_failures[("document", "email")] == 2

    # Run again (a replayed workflow): nothing is attempted again, nobody told twice.
    await acts.dispatch_document(certificate_request(referral.id, number))
    assert len(smtp.sink.to(PROVIDER_EMAIL)) == 2
    assert (await deliveries(db, referral.id))[0].attempts <= 1
