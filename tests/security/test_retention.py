"""Retention: after ``retention_days`` from closure, personal data goes and statistics stay."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import select

from activities.records import RecordActivities
from activities.retention import ERASED, ERASERS, RetentionActivities, redact_snapshot
from api.schemas import referral_read
from models.domain.referral import Referral, Status
from models.messages import Projection, RetentionRequest, RetentionRun
from models.store import reports
from models.store.auth_tables import ErasureRow
from models.store.document_tables import DocumentCopyRow, DocumentRow
from models.store.tables import IdempotencyRow, NotificationRow, ReferralRow
from tests.conftest import Database, Stack
from tests.documents.referrals import declined, signed
from tests.factories import CHILD_DOB, CHILD_NAME
from worker import build_worker
from workflows.retention import RetentionWorkflow
from workflows.schedules import RETENTION_SCHEDULE_ID, ensure_retention_schedule

PERSONAL = (
    CHILD_NAME,
    CHILD_DOB.isoformat(),
    "Grace Testparent",
    "grace.parent@example.org",
    "Sam Officer",
    "sam.officer@example.gov.uk",
    "Pat Senco",
    "Lin Friend",
    "Step-free access",
    "Oakfield",
    "The council refused to carry out an EHC needs assessment",
    "Tell the family the assessment will go ahead",
    "meet.example.org",
)


def leaks(value: Any) -> list[str]:
    text = json.dumps(value, default=str)
    return [p for p in PERSONAL if p in text]


def test_redacted_snapshot_keeps_the_facts_and_drops_every_personal_field() -> None:
    for referral in (declined(), signed()):
        snapshot = referral.model_dump(mode="json")
        assert leaks(snapshot)  # the fixtures do carry personal data
        redacted = redact_snapshot(snapshot)
        assert leaks(redacted) == []
        kept = Referral.model_validate(redacted)
        for field in (
            "id",
            "route",
            "status",
            "local_authority",
            "received_on",
            "deadlines",
            "certificates",
            "appeal_deadline",
            "outcome",
            "closed_on",
        ):
            assert getattr(kept, field) == getattr(referral, field), field
        assert [m.outcome for m in kept.meetings] == [m.outcome for m in referral.meetings]
        assert [p.answer for p in kept.parties] == [p.answer for p in referral.parties]
        assert kept.request.child.name == ERASED
        assert referral_read(kept).details.child.name == ERASED  # GET still answers
        assert redact_snapshot(redacted) == redacted  # idempotent


async def project(db: Database, referral: Referral) -> None:
    await RecordActivities(db.sessionmaker).record_referral(
        Projection(referral=referral, at=datetime.now(UTC))
    )


async def add_outbox_document_and_idempotency(db: Database, referral: Referral) -> None:
    now = datetime.now(UTC)
    async with db.sessionmaker() as session:
        session.add(
            NotificationRow(
                key=f"n-{referral.id}",
                referral_id=referral.id,
                template="certificate_issued",
                recipient="family",
                channel="email",
                status="queued",
                created_at=now,
                data={"family_name": "Grace Testparent"},
            )
        )
        number = f"MC-{uuid.uuid4().hex[:19].upper()}"
        session.add(
            DocumentCopyRow(
                number=number,
                recipient="la",
                sha256="1" * 64,
                size=9,
                content=CHILD_NAME.encode(),
                created_at=now,
            )
        )
        session.add(
            DocumentRow(
                number=number,
                referral_id=referral.id,
                local_authority=referral.local_authority,
                kind="certificate",
                issued_on=referral.received_on,
                issuer="Kids",
                sha256="0" * 64,
                size=9,
                filename="certificate.pdf",
                content=CHILD_NAME.encode(),
                calendar=b"BEGIN:VCALENDAR",
                request_key=f"wf:{referral.id}",
                created_at=now,
            )
        )
        for path, created in (
            (f"/v1/referrals/{referral.id}/withdraw", now),
            ("/v1/referrals", now - timedelta(days=400)),
        ):
            session.add(
                IdempotencyRow(
                    client_id="crm",
                    key=f"{path}-{uuid.uuid4()}",
                    method="POST",
                    path=path,
                    request_hash="h",
                    status_code=200,
                    response={"details": {"child": {"name": CHILD_NAME}}},
                    created_at=created,
                )
            )
        await session.commit()


async def test_erasure_happens_once_after_the_retention_period(db: Database) -> None:
    closed, still_open = declined(), signed()
    assert closed.status is Status.CLOSED
    assert closed.closed_on is not None
    for referral in (closed, still_open):
        await project(db, referral)
        await add_outbox_document_and_idempotency(db, referral)
    async with db.sessionmaker() as session:
        before = await reports.summary(session, None, None, None)
    days = 2190
    retention = RetentionActivities(db.sessionmaker, retention_days=days)
    last_day_kept = closed.closed_on + timedelta(days=days - 1)

    nothing = await retention.erase_expired_referrals(RetentionRequest(today=last_day_kept))
    assert nothing.erased == 0
    assert nothing.idempotency_records_deleted == 2  # creations over 30 days old, any referral
    first = await retention.erase_expired_referrals(
        RetentionRequest(today=last_day_kept + timedelta(days=1))
    )
    assert (first.erased, first.more) == (1, False)
    again = await retention.erase_expired_referrals(
        RetentionRequest(today=last_day_kept + timedelta(days=30))
    )
    assert again.erased == 0

    async with db.sessionmaker() as session:
        erased_row = await session.get(ReferralRow, closed.id)
        open_row = await session.get(ReferralRow, still_open.id)
        erasure = await session.get(ErasureRow, closed.id)
        notes = {n.referral_id: n for n in (await session.exec(select(NotificationRow))).all()}
        docs = {d.referral_id: d for d in (await session.exec(select(DocumentRow))).all()}
        copies = {c.number for c in (await session.exec(select(DocumentCopyRow))).all()}
        paths = [r.path for r in (await session.exec(select(IdempotencyRow))).all()]
        after = await reports.summary(session, None, None, None)
    assert erased_row is not None
    assert open_row is not None
    assert erasure is not None
    assert leaks(erased_row.snapshot) == []
    assert leaks(open_row.snapshot)  # not closed: untouched
    assert (erased_row.status, erased_row.outcome, erased_row.closed_on) == (
        "closed",
        "declined_mediation",
        closed.closed_on,
    )
    assert erased_row.certificate_kind == "declined_mediation"
    assert notes[closed.id].data == {}
    assert notes[still_open.id].data != {}
    assert docs[closed.id].content == b""
    assert docs[closed.id].calendar is None
    assert docs[closed.id].sha256 == "0" * 64  # verification still works
    assert docs[still_open.id].content == CHILD_NAME.encode()
    assert copies == {docs[still_open.id].number}  # recipients' copies go with the bytes
    assert paths == [f"/v1/referrals/{still_open.id}/withdraw"]
    assert set(erasure.cleared) == set(ERASERS)
    assert erasure.cleared["referral"] == 1
    assert erasure.cleared["document"] == 1
    assert after == before  # the statistics do not change


async def test_erasure_works_in_batches(db: Database) -> None:
    referrals = [declined(on=date(2026, 3, 2) + timedelta(days=i)) for i in range(5)]
    for referral in referrals:
        await project(db, referral)
    retention = RetentionActivities(db.sessionmaker, retention_days=1)
    today = date(2026, 12, 31)
    first = await retention.erase_expired_referrals(RetentionRequest(today=today, batch=2))
    assert (first.erased, first.more) == (2, True)
    rest = await retention.erase_expired_referrals(RetentionRequest(today=today, batch=10))
    assert (rest.erased, rest.more) == (3, False)


async def test_the_retention_workflow_and_its_daily_schedule(stack: Stack) -> None:
    client = stack.temporal
    task_queue = f"retention-{uuid.uuid4()}"
    retention = RetentionActivities(stack.db.sessionmaker, retention_days=36500)
    worker = build_worker(
        client,
        task_queue=task_queue,
        activities=[retention.erase_expired_referrals],
        workflows=[RetentionWorkflow],
        max_cached_workflows=0,
    )
    async with worker:
        result = await client.execute_workflow(
            RetentionWorkflow.run,
            RetentionRun(batch=10),
            id=f"retention-{uuid.uuid4()}",
            task_queue=task_queue,
        )
    assert result.erased == 0  # nothing closed 100 years ago
    await ensure_retention_schedule(client, task_queue)
    await ensure_retention_schedule(client, task_queue)  # idempotent: updates in place
    handle = client.get_schedule_handle(RETENTION_SCHEDULE_ID)
    try:
        described = await handle.describe()
        assert described.schedule.spec.time_zone_name == "Europe/London"
        action = described.schedule.action
        assert getattr(action, "task_queue", None) == task_queue
    finally:
        await handle.delete()


async def test_export_then_erasure_through_the_api(stack: Stack) -> None:
    from tests.factories import mediation_body

    created = await stack.http.post("/v1/referrals", json=mediation_body())
    assert created.status_code == 201, created.text
    referral_id = created.json()["id"]
    for command in ("information-session", "decline-mediation"):
        assert (
            await stack.http.post(f"/v1/referrals/{referral_id}/{command}", json={})
        ).status_code == 200

    export = await stack.http.get(f"/v1/referrals/{referral_id}/export")
    assert export.status_code == 200, export.text
    body = export.json()
    assert body["referral"]["snapshot"]["request"]["child"]["name"] == CHILD_NAME
    assert next(e["type"] for e in body["events"]) == "referral.created"
    assert body["erasure"] is None
    assert export.headers["cache-control"] == "no-store"
    assert all("content" not in d for d in body["documents"])

    async with stack.db.sessionmaker() as session:
        row = await session.get(ReferralRow, referral_id)
    assert row is not None
    assert row.closed_on is not None
    retention = RetentionActivities(stack.db.sessionmaker, retention_days=1)
    await retention.erase(referral_id, row.closed_on)

    after = await stack.http.get(f"/v1/referrals/{referral_id}")
    assert after.status_code == 200
    assert after.json()["details"]["child"]["name"] == ERASED
    assert after.json()["certificate"]["kind"] == "declined_mediation"
    export = (await stack.http.get(f"/v1/referrals/{referral_id}/export")).json()
    assert leaks(export["referral"]) == []
    assert export["erasure"]["referral_id"] == referral_id
