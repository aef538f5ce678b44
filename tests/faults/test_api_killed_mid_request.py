"""``kill -9`` of the API process in the middle of a create: the client's retry with the same
``Idempotency-Key`` is answered by the next API process at once (the dead process's claim
lapses within seconds), with the one referral the first attempt started."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from api.idempotency import IN_PROGRESS, LEASE
from models.settings import Settings
from models.store.tables import IdempotencyRow
from tests.conftest import Database, free_port
from tests.deploy.files import run_local
from tests.factories import mediation_body
from tests.faults.conftest import (
    Process,
    api_client,
    codec_client,
    codec_worker,
    fault_settings,
    ok,
    wait_until,
    worker_env,
)

SLACK = 8.0  # the create itself (first workflow task, projection) on a busy machine


class ApiProcess(Process):
    """The API as ``make run`` and the Dockerfile start it: uvicorn with the app factory."""

    def __init__(self, settings: Settings, log: Path) -> None:
        super().__init__(run_local().api_command(settings), log, worker_env(settings))
        self.base_url = f"http://127.0.0.1:{settings.api_port}"

    async def ready(self, within: float = 60.0) -> None:
        async def up() -> bool:
            if not self.running:
                pytest.fail(f"API exited:\n{self.log.read_text(errors='replace')[-2000:]}")
            try:
                async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as http:
                    return (await http.get("/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(up, "the API answering", within)


async def claims(db: Database, key: str) -> list[IdempotencyRow]:
    async with db.sessionmaker() as session:
        found = await session.exec(select(IdempotencyRow).where(col(IdempotencyRow.key) == key))
        return list(found.all())


async def test_a_retry_is_answered_at_once_when_the_api_was_killed_mid_request(
    dev_env: WorkflowEnvironment, fault_db: Database, tmp_path: Path, processes: list[Process]
) -> None:
    port = free_port()
    settings = fault_settings(
        fault_db,
        tmp_path,
        dev_env.client.service_client.config.target_host,
        api_port=port,
    )
    first = ApiProcess(settings, tmp_path / "api-1.log")
    processes.append(first)
    first.start()
    await first.ready()
    http = await api_client(fault_db, first.base_url)
    key = f"create-{uuid.uuid4()}"
    async with http:
        # No worker yet: the create waits in Temporal for the workflow's first task.
        sending = asyncio.create_task(
            http.post("/v1/referrals", json=mediation_body(), headers={"Idempotency-Key": key})
        )

        async def claimed() -> bool:
            return any(r.status_code == IN_PROGRESS for r in await claims(fault_db, key))

        await wait_until(claimed, "the first attempt's claim on its Idempotency-Key")
        first.kill()
        with pytest.raises(httpx.TransportError):
            await sending

        second = ApiProcess(settings, tmp_path / "api-2.log")
        processes.append(second)
        second.start()
        await second.ready()
        async with codec_worker(fault_db, await codec_client(settings), settings):
            started = time.monotonic()
            retried = await http.post(
                "/v1/referrals", json=mediation_body(), headers={"Idempotency-Key": key}
            )
            took = time.monotonic() - started
            referral = await ok(retried, 201)
            again = await ok(
                await http.post(
                    "/v1/referrals", json=mediation_body(), headers={"Idempotency-Key": key}
                ),
                201,
            )
    assert took < LEASE.total_seconds() + SLACK, f"answered after {took:.1f}s"
    assert again["id"] == referral["id"]
    assert again == referral
    (record,) = await claims(fault_db, key)
    assert record.status_code == 201
