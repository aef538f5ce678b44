"""The Web UI at a glance, on the real dev server: a breached case carries the council's name,
the breached deadlines, the day of the latest breach and the council's own reference as search
attributes; its status line names the breach, since when and what happens next; and every
saved query in docs/OPERATIONS.md runs."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.sdk.v1 import WorkflowMetadata

from models.domain.clock import start_of_london_day
from tests.conftest import Stack
from tests.e2e.helpers import create, today
from tests.factories import CHILD_NAME, mediation_body
from workflows import search_attributes as sa

OPERATIONS = Path(__file__).parents[2] / "docs" / "OPERATIONS.md"
HERTS_NAME = "Hertfordshire County Council"


async def found(stack: Stack, query: str, expected: list[str]) -> list[str]:
    ids: list[str] = []
    for _ in range(100):  # visibility is eventually consistent
        ids = [w.id async for w in stack.temporal.list_workflows(query)]
        if ids == expected:
            break
        await asyncio.sleep(0.1)
    return ids


def iso(day: date) -> str:
    return start_of_london_day(day).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_breached_case_shows_council_breaches_and_next_step_when_a_deadline_passed(
    stack: Stack,
) -> None:
    reference = f"HCC-{uuid.uuid4().hex[:8]}"
    received = today() - timedelta(days=21)  # recorded late: DL-13 is already past
    referral = await create(
        stack.http,
        mediation_body(received_on=received.isoformat(), external_reference=reference),
    )
    rid, wid = referral["id"], f"referral-{referral['id']}"
    actioned = referral["deadlines"]["referral_actioned_by"]
    assert actioned["state"] == "breached", referral["deadlines"]
    since = date.fromisoformat(actioned["due_on"]) + timedelta(days=1)

    query = (
        f"LocalAuthorityName = '{HERTS_NAME}' AND BreachedDeadlines = 'referral_actioned_by' "
        f"AND LatestBreach >= '{iso(since)}' AND LatestBreach < '{iso(since + timedelta(1))}' "
        f"AND ExternalReference = '{reference}'"
    )
    assert await found(stack, query, [wid]) == [wid]

    handle = stack.temporal.get_workflow_handle(wid)
    description = await handle.describe()
    attributes = description.typed_search_attributes
    assert attributes.get(sa.LOCAL_AUTHORITY) == "E10000015"
    assert attributes.get(sa.LOCAL_AUTHORITY_NAME) == HERTS_NAME
    assert attributes.get(sa.BREACHED_DEADLINES) == ["referral_actioned_by"]
    latest = attributes.get(sa.LATEST_BREACH)
    assert latest is not None
    assert latest == start_of_london_day(since)
    assert attributes.get(sa.EXTERNAL_REFERENCE) == reference
    summary = await description.static_summary()
    assert summary == f"Mediation referral {rid[:8]} · {HERTS_NAME} (E10000015)"

    metadata: Any = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    line = metadata.current_details
    assert f"BREACHED: referral_actioned_by (DL-13, the mediation provider) since {since}" in line
    assert referral["next_deadline"] is None  # nothing else runs yet: say what is awaited
    assert line.endswith("waiting for: action, information-session, request-mediation"), line
    for text in (CHILD_NAME, "Grace", "Sam Officer"):
        assert text not in line + summary + str(description.raw_description)


def saved_queries() -> list[str]:
    text = OPERATIONS.read_text(encoding="utf-8")
    block = text.split("<!-- queries:", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("--")]


async def test_every_saved_query_in_operations_runs_when_pasted_into_the_web_ui(
    stack: Stack,
) -> None:
    queries = saved_queries()
    assert len(queries) >= 6
    for query in queries:
        async for _ in stack.temporal.list_workflows(query, limit=1):
            break  # it parsed and ran: every attribute it names is registered
    names = {key.name for key in sa.ALL} | {"ExecutionStatus"}
    used = {n for q in queries for n in re.findall(r"\b([A-Z][A-Za-z]+) (?:=|>=|<|IN)", q)}
    assert used <= names, used - names
