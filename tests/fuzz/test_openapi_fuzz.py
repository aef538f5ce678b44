"""Property-based fuzzing of the whole OpenAPI schema with schemathesis, over real HTTP.

Every operation the API publishes gets generated requests - valid ones (positive) and ones
that break the schema (negative) - sent by a client whose key has every scope, to a real API
with a real worker, Temporal dev server and database. The rules: **no 5xx**, and **every 4xx
is ``application/problem+json``** (RFC 9457, with its ``status``). Bounded and deterministic:
a fixed number of examples per operation and mode, derandomized (the same requests each run).

The API runs here in the test's event loop and the generated requests are sent from a thread,
so the loop keeps serving them (and the worker keeps running workflows) meanwhile. Operations
on one referral get the id of a real referral for their positive examples (made afresh per
operation), so commands reach the workflow; negative examples use generated ids.

Nothing is skipped: every operation in the schema is fuzzed (the list is checked against the
app's routes). The documentation pages (``/docs``, ``/redoc``) are not in the schema: they
serve fixed HTML.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok
from temporalio.testing import WorkflowEnvironment

from api.errors import PROBLEM_JSON
from api.keys import ALL_SCOPES, create_key
from api.main import create_app
from tests.conftest import (
    Database,
    free_port,
    make_settings,
    own_database,
    serve_api,
)
from tests.factories import mediation_body, seed_registry
from worker import build_activities, build_worker

EXAMPLES = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 10}
TIMEOUT = 30.0  # seconds for one answer: a request left hanging is a failure too


@dataclass
class Findings:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    nothing_to_break: list[str] = field(default_factory=list)  # no input: no negative case

    def check(self, case: Case[Any], response: schemathesis.Response) -> None:
        self.requests += 1
        status = response.status_code
        self.by_status[status] = self.by_status.get(status, 0) + 1
        where = f"{case.method} {case.formatted_path} -> {status}"
        if status >= 500:
            self.failures.append(f"{where}: server error {response.text[:300]}\n  {_repro(case)}")
        elif 400 <= status < 500:
            kind = next(iter(response.headers.get("content-type", [])), "")
            if not kind.startswith(PROBLEM_JSON):
                self.failures.append(f"{where}: content-type {kind!r}\n  {_repro(case)}")
                return
            body = response.json()
            if not isinstance(body, dict) or body.get("status") != status or not body.get("title"):
                self.failures.append(f"{where}: not a problem document {body!r}\n  {_repro(case)}")


def _repro(case: Case[Any]) -> str:
    body = case.body if not isinstance(case.body, bytes | type(None)) else None
    return (
        f"path={case.path_parameters} query={case.query} body={json.dumps(body, default=str)[:400]}"
    )


@pytest.fixture
async def fuzz_db(tmp_path: Path) -> AsyncIterator[Database]:
    """Its own database (fuzzing changes registries): PostgreSQL when configured, else SQLite."""
    async with own_database(tmp_path / "fuzz.db") as db:
        yield db


def fuzz(
    schema_url: str, base_url: str, token: str, referrals: dict[str, str]
) -> tuple[Findings, list[str]]:
    """Runs in a thread: every operation, both modes; returns findings and what was fuzzed."""
    schema = schemathesis.openapi.from_url(schema_url)
    findings = Findings()
    fuzzed: list[str] = []
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise AssertionError(f"the OpenAPI schema is invalid: {result.err()}")
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        fuzzed.append(label)
        for mode, examples in EXAMPLES.items():
            path_parameters = None
            if mode is GenerationMode.POSITIVE and "{referral_id}" in operation.path:
                path_parameters = {"referral_id": referrals[label]}
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

            @settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: Case[Any]) -> None:
                try:
                    response = case.call(
                        base_url=base_url, session=session, headers=headers, timeout=TIMEOUT
                    )
                except requests.Timeout:
                    findings.failures.append(
                        f"{case.method} {case.formatted_path}: no answer in {TIMEOUT:.0f}s\n"
                        f"  {_repro(case)}"
                    )
                    return
                findings.check(case, response)

            try:
                run()
            except Unsatisfiable:
                if mode is not GenerationMode.NEGATIVE:
                    raise
                findings.nothing_to_break.append(label)  # checked by the test: no inputs
    session.close()
    return findings, fuzzed


async def test_fuzzing_every_operation_gives_no_5xx_and_every_4xx_is_problem_json(
    dev_env: WorkflowEnvironment, fuzz_db: Database, tmp_path: Path
) -> None:
    settings_ = make_settings(
        data_dir=tmp_path / "data",
        database_url=fuzz_db.url,
        task_queue=f"fuzz-{uuid.uuid4()}",
        api_port=free_port(),
        temporal_address=dev_env.client.service_client.config.target_host,
    )
    await seed_registry(fuzz_db.sessionmaker)
    key = await create_key(fuzz_db.sessionmaker, name="fuzz", scopes=ALL_SCOPES)
    worker = build_worker(
        dev_env.client,
        task_queue=settings_.task_queue,
        activities=build_activities(fuzz_db.sessionmaker, settings_),
    )
    app = create_app(settings_, temporal=dev_env.client)
    async with worker, serve_api(app, settings_.api_port) as base_url:
        headers = {"Authorization": f"Bearer {key.token}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
            openapi = (await http.get("/openapi.json")).json()
            referrals: dict[str, str] = {}
            for path, operations in openapi["paths"].items():
                if "{referral_id}" not in path:
                    continue
                for method in operations:
                    created = await http.post("/v1/referrals", json=mediation_body())
                    assert created.status_code == 201, created.text
                    referrals[f"{method.upper()} {path}"] = created.json()["id"]
            findings, fuzzed = await asyncio.to_thread(
                fuzz, f"{base_url}/openapi.json", base_url, key.token, referrals
            )

    published = {f"{m.upper()} {p}" for p, ops in openapi["paths"].items() for m in ops}
    assert set(fuzzed) == published, "every published operation is fuzzed"
    assert findings.requests >= len(published)
    for label in findings.nothing_to_break:  # negative examples need an input to break
        method, path = label.split(" ", 1)
        operation = openapi["paths"][path][method.lower()]
        assert not operation.get("parameters"), label
        assert "requestBody" not in operation, label
    assert not findings.failures, (
        f"{len(findings.failures)} of {findings.requests} requests broke the rules "
        f"(statuses {findings.by_status}):\n" + "\n".join(findings.failures[:40])
    )
