"""``kill -9`` of the worker process in the middle of sending, then a new worker takes over."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from models.messages import workflow_id
from models.store.document_tables import SENDING, SENT
from tests.conftest import Database, serve_api
from tests.e2e.helpers import command, create
from tests.factories import mediation_body
from tests.faults.conftest import (
    Process,
    WorkerProcess,
    api_client,
    codec_client,
    delivery_rows,
    fault_settings,
    ok,
    wait_until,
)
from tests.servers import smtp_server, webhook_receiver

REFERRALS = 3
SENDING_ACTIVITIES = {"dispatch_document", "send_notification"}


async def test_kill_9_worker_mid_send_then_new_worker_completes_every_referral_sending_once(
    dev_env: WorkflowEnvironment, fault_db: Database, tmp_path: Path, processes: list[Process]
) -> None:
    """Three referrals are declined (each issues a certificate, emailed to the family and the
    council, and a ``certificate.issued`` webhook). The mail server holds every message in
    DATA without accepting it; while the certificates are being sent, the worker process gets
    SIGKILL. A new worker process then completes every referral.

    Window covered: the kill lands **before** the SMTP server accepted anything (held in DATA),
    so the ledger rows are left ``sending`` and the new worker, once their lease has passed,
    sends each message exactly once. The other window - accepted by the server, killed before
    the row said ``sent`` - resends the same Message-ID by design (README, "Documents and
    dispatch"); ``tests/documents/test_exactly_once.py`` proves that one byte for byte.
    """
    with smtp_server() as smtp:
        async with webhook_receiver() as hooks:
            settings = fault_settings(
                fault_db,
                tmp_path,
                dev_env.client.service_client.config.target_host,
                smtp_host=smtp.host,
                smtp_port=smtp.port,
                smtp_starttls=False,
                # A send is abandoned after 8 s and its claim presumed dead after 9 s: the
                # workflow's 10 s heartbeat timeout notices the dead worker after that anyway.
                send_timeout_seconds=8,
                delivery_lease_seconds=9,
            )
            client = await codec_client(settings)
            first = WorkerProcess(settings, tmp_path / "worker-1.log")
            processes.append(first)
            first.start()
            await first.started(client)
            app = create_app(settings, temporal=client)
            async with serve_api(app, settings.api_port) as base_url:
                http = await api_client(fault_db, base_url)
                async with http:
                    subscription = await ok(
                        await http.post(
                            "/v1/webhook-subscriptions", json={"url": hooks.url("office")}
                        ),
                        201,
                    )
                    hooks.secrets["office"] = subscription["secret"]

                    smtp.sink.hold_data = True  # nothing is accepted until after the kill
                    ids: list[str] = []
                    numbers: list[str] = []
                    for _ in range(REFERRALS):
                        referral = await create(http, mediation_body())
                        await ok(await command(http, referral["id"], "information-session"))
                        closed = await ok(await command(http, referral["id"], "decline-mediation"))
                        assert closed["status"] == "closed"
                        ids.append(referral["id"])
                        numbers.append(closed["certificate"]["number"])
                    handles = [client.get_workflow_handle(workflow_id(i)) for i in ids]

                    async def mid_send() -> bool:
                        """Certificates claimed and held in DATA; only sends in flight."""
                        rows = await delivery_rows(fault_db, *ids)
                        claimed = {r.document_number for r in rows if r.status == SENDING}
                        if not claimed & set(numbers) or smtp.sink.in_data < 1:
                            return False
                        for handle in handles:
                            described = await handle.describe()
                            pending = described.raw_description.pending_activities
                            if {a.activity_type.name for a in pending} - SENDING_ACTIVITIES:
                                return False  # a projection or webhook still running
                        return True

                    await wait_until(mid_send, "every certificate mid-send, nothing else running")
                    in_flight = {
                        r.key for r in await delivery_rows(fault_db, *ids) if r.status == SENDING
                    }

                    first.kill()
                    # The mail server sees the connections drop: nothing held was accepted.
                    await wait_until(lambda: smtp.sink.in_data == 0, "SMTP sessions dropped")
                    assert smtp.sink.messages() == []
                    smtp.sink.hold_data = False

                    second = WorkerProcess(settings, tmp_path / "worker-2.log")
                    processes.append(second)
                    second.start()
                    await second.started(client)
                    for handle in handles:
                        await asyncio.wait_for(handle.result(), timeout=90)
                        described = await handle.describe()
                        assert described.status is WorkflowExecutionStatus.COMPLETED

                    for rid, number in zip(ids, numbers, strict=True):
                        read = await ok(await http.get(f"/v1/referrals/{rid}"))
                        assert read["status"] == "closed"
                        assert [c["number"] for c in read["certificates"]] == [number]
                        listing = await ok(await http.get(f"/v1/referrals/{rid}/documents"))
                        (document,) = listing["documents"]
                        assert document["number"] == number
                        assert {d["status"] for d in document["deliveries"]} == {"sent"}
            second.signal(signal.SIGTERM)  # a graceful stop: it finishes what it holds

            rows = await delivery_rows(fault_db, *ids)
            assert {r.status for r in rows} == {SENT}
            by_key = {r.key: r for r in rows}
            assert in_flight
            assert all(by_key[k].attempts >= 2 for k in in_flight)

            # Email: one message per delivery key (document or notification, and recipient).
            messages = smtp.sink.messages()
            received_ids = Counter(m.message["Message-ID"] for m in messages)
            assert all(n == 1 for n in received_ids.values()), received_ids
            emails = {r.message_id: r for r in rows if r.channel == "email"}
            assert set(received_ids) == set(emails)
            for number in numbers:
                certificate_mail = [m for m in messages if number in str(m.message["Subject"])]
                recipients = sorted(r for m in certificate_mail for r in m.rcpt_tos)
                assert recipients == ["grace.parent@example.org", "sam.officer@example.gov.uk"]

            # Webhooks: one delivery per (event, subscription), every certificate once.
            delivered = Counter(d.webhook_id for d in hooks.at("office"))
            assert all(n == 1 for n in delivered.values()), delivered
            assert set(delivered) == {r.message_id for r in rows if r.channel == "webhook"}
            issued = [
                d.payload["data"]["document"]["number"]
                for d in hooks.at("office")
                if d.payload["type"] == "certificate.issued"
            ]
            assert sorted(issued) == sorted(numbers)
            assert hooks.bad_signatures == 0
