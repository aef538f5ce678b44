"""deploy/grafana: the dashboard imports (uid, title, panels, a datasource variable) and every
panel queries metrics that the code exports. The API's names come from ``api.metrics``; the
Temporal SDK's are checked against a real worker in ``tests/e2e/test_metrics.py``."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from api.metrics import exported_names
from tests.deploy.files import DASHBOARD

METRIC = re.compile(r"\b((?:sendmed|temporal|process|python)_[a-z0-9_]+)\b")
OURS = ("sendmed_", "process_", "python_")


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def exprs() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"]]


def test_the_dashboard_can_be_imported() -> None:
    board = dashboard()
    assert board["uid"] == "send-referrals"
    assert len(board["uid"]) <= 40
    assert board["title"]
    assert isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] > 0, panel["title"]


def test_every_panel_queries_prometheus_through_the_variable() -> None:
    assert len(panels()) >= 15
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"], panel["title"]
            assert target["expr"].strip(), panel["title"]
            assert METRIC.search(target["expr"]), (panel["title"], target["expr"])


@pytest.mark.parametrize(
    "needle",
    [
        "sendmed_referrals",
        "sendmed_deadlines_breached_total",
        "sendmed_certificates_issued_total",
        "sendmed_dispatch_failures_total",
        "sendmed_http_request_duration_seconds_bucket",
        "temporal_workflow_task_schedule_to_start_latency_bucket",
        "temporal_activity_schedule_to_start_latency_bucket",
        "temporal_workflow_task_execution_latency_bucket",
        "temporal_activity_execution_latency_bucket",
    ],
)
def test_the_dashboard_charts_what_operations_needs(needle: str) -> None:
    assert any(needle in expr for expr in exprs()), needle


def test_every_metric_of_ours_that_a_panel_queries_is_exported() -> None:
    named = {m for expr in exprs() for m in METRIC.findall(expr) if m.startswith(OURS)}
    assert named, "no metric of ours in the dashboard"
    assert named <= exported_names(), sorted(named - exported_names())


def test_latency_quantiles_read_histogram_buckets() -> None:
    for expr in exprs():
        if "histogram_quantile" in expr:
            assert "_bucket" in expr, expr
            assert "le" in re.findall(r"by \(([^)]*)\)", expr)[0], expr
    for quantile in ("0.50", "0.95", "0.99"):
        assert any(
            f"histogram_quantile({quantile}" in e and "sendmed_http_request" in e for e in exprs()
        ), quantile


def test_promql_brackets_balance() -> None:
    pairs = {")": "(", "]": "[", "}": "{"}
    for expr in exprs():
        stack: list[str] = []
        in_string = False
        for char in expr:
            if char == '"':
                in_string = not in_string
            elif in_string:
                continue
            elif char in "([{":
                stack.append(char)
            elif char in pairs:
                assert stack, expr
                assert stack.pop() == pairs[char], expr
        assert not stack, expr
        assert not in_string, expr
