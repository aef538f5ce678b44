"""Temporal's store holds ciphertext only; the codec endpoint decodes it for authorised callers.

A real dev server persists to a file; a referral runs through the API, worker and database
with the payload codec on. Afterwards no byte of the store's files spells the child's name,
date of birth or the parent's email, while ``POST /codec/decode`` gives them back to a key
with scope ``codec`` (and to nobody else). Keys rotate without breaking running or closed
cases: histories written under the old key replay and answer queries under the new one.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from api.keys import ALL_SCOPES, Scope, create_key
from api.main import create_app
from models.adapters.codec import (
    EncryptionCodec,
    Keyring,
    generate_key,
    key_ids,
)
from models.domain import transitions as tr
from models.domain.commands import Command
from models.domain.referral import Referral, ReferralCreate, Status
from models.messages import CommandEnvelope, StartReferral, workflow_id
from tests.conftest import (
    Database,
    binary,
    free_port,
    make_settings,
    migrated_database,
    serve_api,
)
from tests.factories import CHILD_DOB, CHILD_NAME, seed_registry
from worker import build_activities, build_worker, sandbox_runner
from workflows import search_attributes
from workflows.client import data_converter
from workflows.referral import ReferralWorkflow

PARENT_EMAIL = "zeb.uniqueparent@example.org"
PARENT_NAME = "Zebedee Uniqueparent"
SECRETS = (
    CHILD_NAME.encode(),
    CHILD_NAME.split()[-1].encode(),  # the surname alone
    CHILD_DOB.isoformat().encode(),
    CHILD_DOB.strftime("%d/%m/%Y").encode(),
    f"{CHILD_DOB.day} {CHILD_DOB:%B %Y}".encode(),
    PARENT_EMAIL.encode(),
    PARENT_NAME.encode(),
)
PATCH_MARKER = "core_patch"
LOCAL_ACTIVITY_MARKER = "core_local_activity"
LOCAL_ACTIVITY_DATA = "data"  # the SDK's record: activity type, attempt, times
SERVER_ARGS = ["--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=true"]


def referral_body() -> dict[str, Any]:
    from tests.factories import mediation_body

    body = mediation_body()
    body["referrer"] = {
        "role": "parent",
        "contact": {"name": PARENT_NAME, "email": PARENT_EMAIL, "preferred": "email"},
    }
    return body


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every ``Payload`` inside a protobuf message (inputs, results, headers, memos, summaries,
    failures), except search attributes: those are indexed by the server, so never encrypted
    (and never personal data: see the describe check)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None or field.message_type.name == "SearchAttributes":
            continue
        if field.message_type.GetOptions().map_entry:
            items: Any = value.values()
        elif field.is_repeated:
            items = value
        else:
            items = [value]
        for item in items:
            if isinstance(item, Message):
                yield from payloads_in(item)


def encoded_payloads(events: Iterable[HistoryEvent]) -> Iterator[Payload]:
    """Every payload the data converter wrote: not a patch marker (the SDK writes it without
    the codec, naming only the patch), nor a local activity marker's bookkeeping."""
    for event in events:
        marker = event.marker_recorded_event_attributes
        if marker.marker_name == PATCH_MARKER:
            continue
        if marker.marker_name == LOCAL_ACTIVITY_MARKER:
            for name, details in marker.details.items():
                if name != LOCAL_ACTIVITY_DATA:
                    yield from payloads_in(details)
            continue
        yield from payloads_in(event)


def local_activity_bookkeeping(events: Iterable[HistoryEvent]) -> Iterator[Payload]:
    for event in events:
        marker = event.marker_recorded_event_attributes
        if marker.marker_name == LOCAL_ACTIVITY_MARKER:
            yield from payloads_in(marker.details[LOCAL_ACTIVITY_DATA])


def store_bytes(store: Path) -> bytes:
    """The store and any journal/WAL beside it."""
    return b"".join(p.read_bytes() for p in sorted(store.parent.glob(store.name + "*")))


async def poll(check: Callable[[], Any], seconds: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


@pytest.fixture
async def app_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = await migrated_database(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    yield db
    await db.engine.dispose()


async def test_store_holds_no_personal_data_and_the_codec_endpoint_decodes_it(
    tmp_path: Path, app_db: Database
) -> None:
    store = tmp_path / "temporal" / "temporal.db"
    store.parent.mkdir()
    settings = make_settings(
        database_url=app_db.url,
        task_queue=f"enc-{uuid.uuid4()}",
        data_dir=tmp_path,
        codec_keys={"2026-a": generate_key()},
    )
    codec = settings.payload_codec()
    await seed_registry(app_db.sessionmaker)
    everything = await create_key(app_db.sessionmaker, name="ops", scopes=ALL_SCOPES)
    no_codec = await create_key(
        app_db.sessionmaker, name="crm", scopes=[Scope.REFERRALS_READ, Scope.REFERRALS_WRITE]
    )
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(codec),
        dev_server_existing_path=binary("temporal"),
        dev_server_database_filename=str(store),
        search_attributes=list(search_attributes.ALL),
        dev_server_extra_args=SERVER_ARGS,
        port=free_port(),
    )
    async with env:
        worker = build_worker(
            env.client,
            task_queue=settings.task_queue,
            activities=build_activities(app_db.sessionmaker, settings),
        )
        app = create_app(settings, temporal=env.client)
        async with (
            worker,
            serve_api(app, free_port()) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as http,
        ):
            auth = {"Authorization": f"Bearer {everything.token}"}
            created = await http.post("/v1/referrals", json=referral_body(), headers=auth)
            assert created.status_code == 201, created.text
            referral_id = created.json()["id"]
            for command in ("information-session", "decline-mediation"):
                answer = await http.post(
                    f"/v1/referrals/{referral_id}/{command}", json={}, headers=auth
                )
                assert answer.status_code == 200, answer.text
            handle = env.client.get_workflow_handle(workflow_id(referral_id))
            await handle.result()
            history = await handle.fetch_history()

            # Every payload in the history is ciphertext under our key (a patch marker names
            # only the patch, in clear: the SDK writes it without the codec).
            stored = list(encoded_payloads(history.events))
            # A local activity's marker keeps the SDK's own record of it in clear: its type,
            # attempt and times, never its input; its result is ciphertext like any other.
            bookkeeping = [p.data for p in local_activity_bookkeeping(history.events)]
            assert bookkeeping
            assert not [s for s in SECRETS for data in bookkeeping if s in data]
            assert stored
            assert key_ids(stored) == {"2026-a"}
            assert all(p.metadata["encoding"] == b"binary/encrypted" for p in stored)

            # Search attributes, the workflow id and the summary carry no personal data.
            described = await handle.describe()
            visible = " ".join(
                [
                    described.id,
                    str([(k.name, v) for k, v in described.typed_search_attributes]),
                    str(described.static_summary),
                    str(described.static_details),
                ]
            ).encode()
            assert not [s for s in SECRETS if s in visible]

            # The codec endpoint gives the input back to an authorised caller only.
            started = history.events[0].workflow_execution_started_event_attributes
            body = json_format.MessageToDict(Payloads(payloads=started.input.payloads))
            namespace = {"X-Namespace": env.client.namespace}
            decoded = await http.post("/codec/decode", json=body, headers={**auth, **namespace})
            assert decoded.status_code == 200, decoded.text
            plain = b"".join(base64.b64decode(p["data"]) for p in decoded.json()["payloads"])
            assert CHILD_NAME.encode() in plain
            assert CHILD_DOB.isoformat().encode() in plain
            assert PARENT_EMAIL.encode() in plain
            refused = await http.post("/codec/decode", json=body, headers=namespace)
            assert refused.status_code == 401
            lacking = await http.post(
                "/codec/decode",
                json=body,
                headers={"Authorization": f"Bearer {no_codec.token}", **namespace},
            )
            assert lacking.status_code == 403
            other_namespace = await http.post(
                "/codec/decode", json=body, headers={**auth, "X-Namespace": "someone-else"}
            )
            assert other_namespace.status_code == 403

            # Encoding through the endpoint round-trips.
            encoded = await http.post("/codec/encode", json=decoded.json(), headers=auth)
            assert encoded.status_code == 200
            again = await http.post("/codec/decode", json=encoded.json(), headers=auth)
            assert again.json() == decoded.json()

    data = store_bytes(store)
    assert len(data) > 100_000  # the store really is on disk, history and visibility
    assert referral_id.encode() in data  # ids are there in clear: they are not personal
    leaked = [s.decode() for s in SECRETS if s in data]
    assert leaked == []


CREATE: TypeAdapter[Any] = TypeAdapter(ReferralCreate)
COMMAND: TypeAdapter[Any] = TypeAdapter(Command)


async def start_referral(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    referral_id = str(uuid.uuid4())
    start = StartReferral(
        referral_id=referral_id,
        request=CREATE.validate_python(referral_body()),
        received_on=datetime.now(UTC).date(),
        created_at=datetime.now(UTC),
        actor="test",
        request_hash="h",
        policy=tr.Policy(),
    )
    handle = await client.start_workflow(
        ReferralWorkflow.run, start, id=workflow_id(referral_id), task_queue=task_queue
    )
    await poll(lambda: handle.query(ReferralWorkflow.referral))
    return handle


async def command(handle: WorkflowHandle[Any, Any], name: str) -> Referral:
    envelope = CommandEnvelope(actor="test", command=COMMAND.validate_python({"command": name}))
    result: Referral = await handle.execute_update(name, envelope, result_type=Referral)
    return result


async def test_histories_written_under_the_old_key_are_read_after_rotation(
    tmp_path: Path, app_db: Database
) -> None:
    old_key, new_key = generate_key(), generate_key()
    before = make_settings(
        database_url=app_db.url, task_queue=f"rot-{uuid.uuid4()}", codec_keys={"2025": old_key}
    )
    after = make_settings(
        database_url=app_db.url,
        task_queue=before.task_queue,
        codec_keys={"2025": old_key, "2026": new_key},
        codec_active_key_id="2026",
    )
    await seed_registry(app_db.sessionmaker)
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(before.payload_codec()),
        dev_server_existing_path=binary("temporal"),
        search_attributes=list(search_attributes.ALL),
        dev_server_extra_args=SERVER_ARGS,
        port=free_port(),
    )
    async with env:
        old_client = env.client
        worker = build_worker(
            old_client,
            task_queue=before.task_queue,
            activities=build_activities(app_db.sessionmaker, before),
            max_cached_workflows=0,
        )
        async with worker:
            running = await start_referral(old_client, before.task_queue)
            await command(running, "information_session")
            closed = await start_referral(old_client, before.task_queue)
            await command(closed, "information_session")
            await command(closed, "decline_mediation")
            await closed.result()

        # The key is rotated: new client and worker, the new key active, the old one kept.
        new_client = await Client.connect(
            old_client.service_client.config.target_host,
            namespace=old_client.namespace,
            data_converter=data_converter(after.payload_codec()),
        )
        worker = build_worker(
            new_client,
            task_queue=after.task_queue,
            activities=build_activities(app_db.sessionmaker, after),
            max_cached_workflows=0,  # every task replays the whole history from the store
        )
        async with worker:
            running = new_client.get_workflow_handle(running.id)
            state = await running.query(ReferralWorkflow.referral)
            assert state is not None
            assert state.status is Status.AWAITING_FAMILY_DECISION
            result = await command(running, "decline_mediation")
            assert result.status is Status.CLOSED
            await running.result()
            old_closed = await new_client.get_workflow_handle(closed.id).query(
                ReferralWorkflow.referral
            )
            assert old_closed is not None
            assert old_closed.status is Status.CLOSED

        mixed = await running.fetch_history()
        written = list(encoded_payloads(mixed.events))
        assert key_ids(written) == {"2025", "2026"}
        # Replaying a history that spans both keys needs (only) the rotated keyring.
        replayer = Replayer(
            workflows=[ReferralWorkflow],
            data_converter=data_converter(after.payload_codec()),
            workflow_runner=sandbox_runner(),
        )
        replayed = await replayer.replay_workflow(mixed, raise_on_replay_failure=False)
        assert replayed.replay_failure is None
        only_new = Keyring.from_config({"2026": new_key})
        with pytest.raises(ValueError, match="unknown key id"):
            await EncryptionCodec(only_new).decode(written)
