"""The SMTP server is down: dispatch retries, then delivers each message once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from models.messages import workflow_id
from models.store.document_tables import PENDING, SENT
from tests.conftest import Database, free_port
from tests.e2e.helpers import command, create
from tests.factories import mediation_body
from tests.faults.conftest import delivery_rows, fault_settings, in_process_service, ok, wait_until
from tests.servers import smtp_server
from workflows import search_attributes as sa


async def test_smtp_server_down_then_started_dispatch_retries_and_delivers_each_message_once(
    dev_env: WorkflowEnvironment, fault_db: Database, tmp_path: Path
) -> None:
    """Nothing listens on the SMTP port while a certificate is issued: every send is refused,
    the delivery goes back to ``pending`` and the activity is retried with backoff. The mail
    server then starts on that port, and each message arrives exactly once."""
    smtp_port = free_port()  # nothing listens here yet: connections are refused
    settings = fault_settings(
        fault_db,
        tmp_path,
        dev_env.client.service_client.config.target_host,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_starttls=False,
    )
    async with in_process_service(fault_db, settings) as (client, http):
        referral = await create(http, mediation_body())
        rid = referral["id"]
        await ok(await command(http, rid, "information-session"))
        closed = await ok(await command(http, rid, "decline-mediation"))
        number = closed["certificate"]["number"]

        async def refused_twice() -> bool:
            rows = await delivery_rows(fault_db, rid)
            mine = [r for r in rows if r.document_number == number and r.channel == "email"]
            return bool(mine) and all(r.status == PENDING and r.attempts >= 2 for r in mine)

        await wait_until(refused_twice, "the certificate's emails refused twice")
        (row, *_) = [r for r in await delivery_rows(fault_db, rid) if r.channel == "email"]
        assert row.detail  # why it will be retried, e.g. the refused connection

        # The Web UI already shows the case closed while its last sends are retried.
        described = await client.get_workflow_handle(workflow_id(rid)).describe()
        assert described.status is WorkflowExecutionStatus.RUNNING
        attributes = described.typed_search_attributes
        assert attributes.get(sa.REFERRAL_STATUS) == "closed"
        assert attributes.get(sa.CERTIFICATE_ISSUED) is True

        with smtp_server(port=smtp_port) as smtp:
            handle = client.get_workflow_handle(workflow_id(rid))
            await asyncio.wait_for(handle.result(), timeout=60)
            messages = smtp.sink.messages()

        rows = await delivery_rows(fault_db, rid)
        emails = [r for r in rows if r.channel == "email"]
        assert emails
        assert {r.status for r in emails} == {SENT}
        ids = Counter(m.message["Message-ID"] for m in messages)
        assert all(n == 1 for n in ids.values()), ids
        assert set(ids) == {r.message_id for r in emails}
        certificate = [m for m in messages if number in str(m.message["Subject"])]
        assert sorted(r for m in certificate for r in m.rcpt_tos) == [
            "grace.parent@example.org",
            "sam.officer@example.gov.uk",
        ]
        documents = await ok(await http.get(f"/v1/referrals/{rid}/documents"))
        (document,) = documents["documents"]
        assert {d["status"] for d in document["deliveries"]} == {"sent"}
        assert all(d["attempts"] >= 3 for d in document["deliveries"])
