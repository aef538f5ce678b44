"""Observability on the real stack: ``GET /metrics``, the worker's SDK metrics, and logs that
name the referral (never a person).

- ``/metrics`` needs scope ``metrics:read``; request series are labelled by route template;
  the business series follow the read model as a referral gets its deemed certificate, a
  breached deadline and a webhook that fails for good; a database that cannot be read still
  gives an answer (``sendmed_read_model_up 0``); odd values in the database never become labels.
- A worker connected through ``workflows.client.metrics_runtime`` serves every Temporal SDK
  metric that the Grafana dashboard (``deploy/grafana/``) charts.
- API access logs and activity logs carry ``referral_id``, and no personal data.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.keys import create_key
from api.metrics import Metrics
from models.adapters.logging import configure_logging
from models.store.tables import ReferralEventRow, ReferralRow
from tests.conftest import Stack, free_port, migrated_database
from tests.e2e.helpers import command, create, ok, today
from tests.factories import CHILD_NAME, HERTS, mediation_body

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "send-referrals.json"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text format → {(name, labels): value}."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(match.group(3) or ""))
        samples[(match.group(1), labels)] = float(match.group(4))
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(stack: Stack) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await stack.http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


# --------------------------------------------------------------------------- /metrics


async def test_metrics_need_the_metrics_read_scope(stack: Stack) -> None:
    reader = await create_key(stack.db.sessionmaker, name="crm", scopes=["referrals:read"])
    scraper = await create_key(stack.db.sessionmaker, name="prometheus", scopes=["metrics:read"])
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        assert (await http.get("/metrics")).status_code == 401
        forbidden = await http.get("/metrics", headers={"Authorization": f"Bearer {reader.token}"})
        assert forbidden.status_code == 403
        allowed = await http.get("/metrics", headers={"Authorization": f"Bearer {scraper.token}"})
        assert allowed.status_code == 200
        assert "sendmed_referrals{" in allowed.text


async def test_requests_are_counted_by_route_template_never_by_raw_path(stack: Stack) -> None:
    referral = await create(stack.http, mediation_body())
    rid = referral["id"]
    before = await scrape(stack)
    for _ in range(3):
        await ok(await stack.http.get(f"/v1/referrals/{rid}"))
    assert (await stack.http.get(f"/v1/referrals/{rid}/no-such-thing")).status_code == 404
    assert (await stack.http.get(f"/nowhere/{rid}")).status_code == 404
    after_response = await stack.http.get("/metrics")
    after = parse(after_response.text)

    template = "/v1/referrals/{referral_id}"
    name = "sendmed_http_requests_total"
    assert (
        value(after, name, method="GET", route=template, status="200")
        - value(before, name, method="GET", route=template, status="200")
        == 3
    )
    assert value(after, name, method="GET", route="<unmatched>", status="404") >= 1
    histogram = "sendmed_http_request_duration_seconds_count"
    assert value(after, histogram, method="GET", route=template, status="200") >= 3
    assert rid not in after_response.text  # no id, no path: templates only
    await ok(await command(stack.http, rid, "withdraw"))


async def test_business_metrics_follow_the_read_model(stack: Stack) -> None:
    """A deemed certificate (mediation asked for 31 days ago), its breached 30-day deadline,
    and a back office that answers 404 (a delivery failed for good)."""
    endpoint = f"gone-{uuid.uuid4().hex[:8]}"  # no secret registered: the receiver says 404
    subscription = await ok(
        await stack.http.post(
            "/v1/webhook-subscriptions",
            json={
                "url": stack.hooks.url(endpoint),
                "event_types": ["certificate.issued"],
                "local_authority": HERTS,
            },
        ),
        201,
    )
    try:
        before = await scrape(stack)
        now = today()
        body = mediation_body(
            received_on=(now - timedelta(days=35)).isoformat(),
            decision={
                "type": "refusal_to_assess",
                "letter_date": (now - timedelta(days=40)).isoformat(),
            },
        )
        rid = (await create(stack.http, body))["id"]
        asked = (now - timedelta(days=31)).isoformat()
        after_command = await ok(await command(stack.http, rid, "request-mediation", {"on": asked}))
        assert after_command["certificate"]["kind"] == "deemed"

        async def failed_delivery() -> bool:
            deliveries = await ok(await stack.http.get(f"/v1/referrals/{rid}/deliveries"))
            return any(
                d["recipient"] == subscription["id"] and d["status"] == "failed"
                for d in deliveries["deliveries"]
            )

        await eventually(failed_delivery)
        after = await scrape(stack)

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert value(after, "sendmed_read_model_up") == 1
        assert delta("sendmed_certificates_issued_total", kind="deemed") == 1
        assert (
            delta("sendmed_deadlines_breached_total", deadline="mediation_must_be_arranged_by") == 1
        )
        assert delta("sendmed_referrals", route="mediation", status="arranging_meeting") == 1
        assert delta("sendmed_referrals_in_breach", route="mediation") == 1
        assert delta("sendmed_dispatch_failures_total", purpose="document", channel="webhook") == 1

        await ok(await command(stack.http, rid, "withdraw"))
        closed = await scrape(stack)
        assert (
            value(closed, "sendmed_referrals_in_breach", route="mediation")
            == value(after, "sendmed_referrals_in_breach", route="mediation") - 1
        )
        assert value(closed, "sendmed_certificates_issued_total", kind="deemed") == value(
            after, "sendmed_certificates_issued_total", kind="deemed"
        )  # a counter: closing takes nothing back
    finally:
        await stack.http.delete(f"/v1/webhook-subscriptions/{subscription['id']}")


async def test_a_database_that_cannot_be_read_still_gives_an_answer(tmp_path: Path) -> None:
    """No tables (never migrated): the scrape answers, ``sendmed_read_model_up 0``."""
    from models.store.db import make_engine, make_sessionmaker

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        metrics = Metrics()
        metrics.observe("GET", "/healthz", 200, 0.002)
        samples = parse((await metrics.exposition(make_sessionmaker(engine))).decode())
    finally:
        await engine.dispose()
    assert value(samples, "sendmed_read_model_up") == 0
    assert (
        value(samples, "sendmed_http_requests_total", method="GET", route="/healthz", status="200")
        == 1
    )
    assert not any(name == "sendmed_referrals" for name, _ in samples)


async def test_odd_values_in_the_database_never_become_labels(tmp_path: Path) -> None:
    """A status, deadline or kind that is not one of ours (say, a name typed into the wrong
    column) is reported as ``other``."""
    db = await migrated_database(f"sqlite+aiosqlite:///{tmp_path / 'odd.db'}")
    at = datetime.now(UTC)
    try:
        async with db.sessionmaker() as session:
            session.add(
                ReferralRow(
                    id=str(uuid.uuid4()),
                    route="mediation",
                    status=CHILD_NAME,
                    local_authority=HERTS,
                    version=1,
                    received_on=date(2026, 11, 2),
                    created_at=at,
                    updated_at=at,
                    snapshot={},
                )
            )
            for seq, (type_, data) in enumerate(
                [
                    ("deadline.breached", {"deadline": CHILD_NAME}),
                    ("certificate.issued", {"kind": CHILD_NAME}),
                ]
            ):
                session.add(
                    ReferralEventRow(
                        referral_id="r",
                        seq=seq,
                        type=type_,
                        occurred_on=date(2026, 11, 2),
                        recorded_at=at,
                        actor="system",
                        data=data,
                    )
                )
            await session.commit()
        text = (await Metrics().exposition(db.sessionmaker)).decode()
    finally:
        await db.engine.dispose()
    samples = parse(text)
    assert CHILD_NAME not in text
    assert value(samples, "sendmed_referrals", route="mediation", status="other") == 1
    assert value(samples, "sendmed_deadlines_breached_total", deadline="other") == 1
    assert value(samples, "sendmed_certificates_issued_total", kind="other") == 1


# --------------------------------------------------------------------------- the worker's SDK


def dashboard_metric_names(prefix: str) -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    return {name for expr in exprs for name in re.findall(rf"\b{prefix}[a-z0-9_]+\b", expr)}


async def test_the_worker_runtime_serves_every_sdk_metric_the_dashboard_charts(
    stack: Stack, dev_env: WorkflowEnvironment
) -> None:
    from models.messages import RetentionRun
    from worker import build_activities, build_worker
    from workflows.client import connect, metrics_runtime
    from workflows.retention import RetentionWorkflow

    wanted = dashboard_metric_names("temporal_")
    assert len(wanted) >= 5, wanted
    port = free_port()
    runtime = metrics_runtime(f"127.0.0.1:{port}")
    assert runtime is not None
    client = await connect(
        dev_env.client.service_client.config.target_host,
        dev_env.client.namespace,
        converter=pydantic_data_converter,
        runtime=runtime,
    )
    queue = f"metrics-{uuid.uuid4()}"
    worker = build_worker(
        client,
        task_queue=queue,
        activities=build_activities(stack.db.sessionmaker, stack.settings),
        max_cached_workflows=10,
    )
    async with worker:
        await client.execute_workflow(
            RetentionWorkflow.run,
            RetentionRun(batch=1, max_batches=1),
            id=f"metrics-retention-{uuid.uuid4()}",
            task_queue=queue,
        )
        async with httpx.AsyncClient(timeout=10) as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    exported = {name for name, _ in parse(text)}
    assert wanted <= exported, sorted(wanted - exported)
    samples = parse(text)
    buckets = [
        labels
        for name, labels in samples
        if name == "temporal_activity_execution_latency_bucket"
        and ("activity_type", "erase_expired_referrals") in labels
    ]
    assert ("le", "0.1") in set().union(*buckets)  # seconds, as the dashboard expects


# --------------------------------------------------------------------------- logs


async def test_access_and_activity_logs_name_the_referral_and_nobody(
    stack: Stack, restore_logging: None
) -> None:
    buffer = io.StringIO()
    configure_logging(stack.settings.model_copy(update={"log_format": "json"}), stream=buffer)
    referral = await create(stack.http, mediation_body())
    rid = referral["id"]
    await ok(await command(stack.http, rid, "information-session"))
    number = (await ok(await command(stack.http, rid, "decline-mediation")))["certificate"][
        "number"
    ]

    def entries() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    async def dispatched() -> bool:
        return any(
            e["logger"] == "activities.documents" and number in e["message"] for e in entries()
        )

    await eventually(dispatched)
    logged = entries()
    access = [
        e
        for e in logged
        if e["logger"] == "api.access"
        and e.get("route") == "/v1/referrals/{referral_id}/decline-mediation"
    ]
    assert access, "no access log line for the command"
    assert {e.get("referral_id") for e in access} == {rid}
    assert access[0]["status"] == 200
    activity = [e for e in logged if e["logger"] == "activities.documents"]
    assert activity
    assert all(e.get("referral_id") == rid for e in activity)
    text = buffer.getvalue()
    assert CHILD_NAME not in text
    assert "grace.parent@example.org" not in text
