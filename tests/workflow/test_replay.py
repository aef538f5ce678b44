"""Saved histories of every path replay through the current workflow code.

A change that would break running referrals (non-determinism) fails here. Histories are
recorded by the workflow tests with ``RECORD_HISTORIES=1`` (see README); when behaviour must
change for running cases, guard it with ``workflow.patched(...)`` and keep the old histories.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS, sandbox_runner

HISTORIES = sorted((Path(__file__).parent / "histories").glob("**/*.json"))
LOADED = {f"{p.parent.name}/{p.stem}": json.loads(p.read_text()) for p in HISTORIES}


def test_there_is_a_history_for_each_path() -> None:
    names = set(LOADED)
    assert len(names) >= 10
    assert any(n.split("/")[-1].startswith("mediation_") for n in names)
    assert any(n.split("/")[-1].startswith("dr_") for n in names)


@pytest.mark.parametrize("name", sorted(LOADED))
async def test_history_replays_on_current_code(name: str) -> None:
    data = LOADED[name]
    workflow_id = next(
        e["workflowExecutionStartedEventAttributes"].get("workflowId", name)
        for e in data["events"]
        if "workflowExecutionStartedEventAttributes" in e
    )
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),
    )
    result = await replayer.replay_workflow(
        WorkflowHistory.from_json(workflow_id, data), raise_on_replay_failure=False
    )
    assert result.replay_failure is None, result.replay_failure
