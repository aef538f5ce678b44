"""Every name Temporal records is a constant of ``models/messages.py``, used by both ends."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

from activities import calendar, documents, mediators, notify, reconcile, records, retention
from models import messages
from workflows.reconcile import ReconcileWorkflow
from workflows.referral import ReferralWorkflow
from workflows.retention import RetentionWorkflow

ROOT = Path(__file__).resolve().parents[2]
ACTIVITY_NAMES = {
    messages.LOAD_BANK_HOLIDAYS,
    messages.RECORD_REFERRAL,
    messages.PROJECT_REFERRAL,
    messages.SEND_NOTIFICATION,
    messages.PUBLISH_EVENTS,
    messages.DISPATCH_DOCUMENT,
    messages.VET_AND_RESERVE_BOOKING,
    messages.RELEASE_RESERVATION,
    messages.CANCELLATION_REQUESTED_BY,
    messages.RECONCILE_STOPPED_REFERRALS,
    messages.ERASE_EXPIRED_REFERRALS,
}
WORKFLOW_NAMES = {
    messages.REFERRAL_WORKFLOW,
    messages.RETENTION_WORKFLOW,
    messages.RECONCILE_WORKFLOW,
}


def defined_activities() -> set[str]:
    names: set[str] = set()
    for module in (calendar, documents, mediators, notify, reconcile, records, retention):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            for _, member in inspect.getmembers(cls, inspect.isfunction):
                definition: Any = activity._Definition.from_callable(member)
                if definition is not None:
                    names.add(definition.name)
    return names


def test_every_activity_is_named_by_its_constant_when_the_worker_defines_it() -> None:
    assert defined_activities() == ACTIVITY_NAMES


def test_workflows_query_and_updates_are_named_by_constants_when_defined() -> None:
    defined = {
        workflow._Definition.must_from_class(cls).name
        for cls in (ReferralWorkflow, RetentionWorkflow, ReconcileWorkflow)
    }
    assert defined == WORKFLOW_NAMES
    referral = workflow._Definition.must_from_class(ReferralWorkflow)
    updates = {v for k, v in vars(messages).items() if k.endswith("_UPDATE")}
    assert set(referral.updates) == updates
    assert set(referral.queries) == {messages.REFERRAL_QUERY}


def test_no_activity_workflow_or_task_queue_name_is_written_twice_when_source_is_scanned() -> None:
    names = ACTIVITY_NAMES | WORKFLOW_NAMES | {messages.TASK_QUEUE}
    found = []
    for room in ("api", "activities", "models", "workflows", "bench"):
        for path in (ROOT / room).rglob("*.py"):
            if path == ROOT / "models" / "messages.py" or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in names:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert found == []
