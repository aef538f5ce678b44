"""When Temporal is away - not yet started, stopped (``kill -9``) or frozen (``kill -STOP``) -
creates and commands answer 503 problem+json with ``Retry-After`` within a bound, with every
security header; reads from the database carry on; and the API's one pooled, lazily
connected client works again as soon as Temporal is back, without restarting anything."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from api.main import create_app
from tests.conftest import Database, serve_api
from tests.factories import mediation_body
from tests.faults.conftest import (
    Process,
    TemporalServer,
    api_client,
    codec_client,
    codec_worker,
    fault_settings,
    ok,
    wait_until,
)

RPC_BOUND = 2.0  # the API's bound on a start or query (seconds)
UPDATE_BOUND = 4.0  # the API's bound on a create or command
SLACK = 3.0  # the answer's own overhead on a busy machine

SECURITY_HEADERS = (
    "x-content-type-options",
    "referrer-policy",
    "x-frame-options",
    "cache-control",
    "content-security-policy",
)


async def timed(send: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response: httpx.Response = await send
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response, took: float, bound: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/temporal-unavailable")
    assert int(response.headers["retry-after"]) > 0
    for name in SECURITY_HEADERS:
        assert name in response.headers, name
    assert took < bound + SLACK, f"answered after {took:.1f}s"


async def test_creates_and_commands_answer_503_fast_when_temporal_is_not_started_stopped_or_frozen(
    fault_db: Database, tmp_path: Path, processes: list[Process]
) -> None:
    server = TemporalServer(tmp_path / "temporal.db", tmp_path / "temporal.log")
    processes.append(server)
    settings = fault_settings(
        fault_db,
        tmp_path,
        server.target,
        temporal_rpc_timeout_seconds=RPC_BOUND,
        temporal_update_timeout_seconds=UPDATE_BOUND,
    )
    # The API connects lazily by itself (no client handed in), as under uvicorn.
    async with serve_api(create_app(settings), settings.api_port) as base_url:
        http = await api_client(fault_db, base_url)
        async with http:
            # 1. Temporal not started yet: the lazy client cannot connect.
            response, took = await timed(http.post("/v1/referrals", json=mediation_body()))
            assert_unavailable(response, took, UPDATE_BOUND)

            server.start()
            await server.ready()
            async with codec_worker(fault_db, await codec_client(settings), settings):
                # The same pooled client connects now.
                referral = await ok(await http.post("/v1/referrals", json=mediation_body()), 201)
                rid = referral["id"]

                # 2. Stopped (kill -9): refused connections.
                server.kill()
                response, took = await timed(http.post("/v1/referrals", json=mediation_body()))
                assert_unavailable(response, took, UPDATE_BOUND)
                response, took = await timed(http.post(f"/v1/referrals/{rid}/action", json={}))
                assert_unavailable(response, took, UPDATE_BOUND)
                await ok(await http.get(f"/v1/referrals/{rid}"))  # reads need no Temporal

                server.start()
                await server.ready()

                async def answers() -> bool:
                    got = await http.post("/v1/referrals", json=mediation_body())
                    return got.status_code == 201

                await wait_until(answers, "creates again after the restart", within=60)

                # 3. Frozen (kill -STOP): connections open, nothing answers.
                key = f"frozen-{uuid.uuid4()}"
                server.freeze()
                try:
                    response, took = await timed(
                        http.post(
                            f"/v1/referrals/{rid}/information-session",
                            json={},
                            headers={"Idempotency-Key": key},
                        )
                    )
                    assert_unavailable(response, took, UPDATE_BOUND)
                    response, took = await timed(http.post("/v1/referrals", json=mediation_body()))
                    assert_unavailable(response, took, UPDATE_BOUND)
                finally:
                    server.thaw()

                # Thawed: the same command, retried with its key, is applied once.
                async def applied() -> bool:
                    got = await http.post(
                        f"/v1/referrals/{rid}/information-session",
                        json={},
                        headers={"Idempotency-Key": key},
                    )
                    return got.status_code == 200

                await wait_until(applied, "the command once Temporal thaws", within=60)
                events = await ok(await http.get(f"/v1/referrals/{rid}/events"))
                held = [e for e in events["items"] if e["type"] == "information_session.held"]
                assert len(held) == 1
