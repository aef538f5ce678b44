"""The worker's task-handling options that the benchmarks chose (docs/PERFORMANCE.md)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from worker import build_worker


async def test_eager_activities_are_off_unless_the_setting_turns_them_on(
    timeskip_env: WorkflowEnvironment,
) -> None:
    assert Settings.model_fields["worker_eager_activities"].default is False
    default = build_worker(timeskip_env.client, task_queue="opts-default", activities=[])
    eager = build_worker(
        timeskip_env.client, task_queue="opts-eager", activities=[], eager_activities=True
    )
    assert default.config()["disable_eager_activity_execution"] is True
    assert eager.config()["disable_eager_activity_execution"] is False
    # Heartbeats reach the server every 2 s at most, well inside the sends' 10 s timeout.
    assert default.config()["max_heartbeat_throttle_interval"] == timedelta(seconds=2)
