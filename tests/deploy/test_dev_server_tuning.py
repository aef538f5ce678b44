"""``make run``'s Temporal dev server (and every benchmark's, which starts it the same way)
gives each task queue one partition, not Temporal's default four: checked on a real dev
server started with those options, against one started without them."""

from __future__ import annotations

import itertools

from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import ListTaskQueuePartitionsRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from tests.conftest import binary, free_port
from tests.deploy.files import run_local


async def partitions(client: Client, task_queue: str) -> tuple[int, int]:
    """(workflow, activity) partitions of ``task_queue``, as the server lists them."""
    answer = await client.workflow_service.list_task_queue_partitions(
        ListTaskQueuePartitionsRequest(namespace="default", task_queue=TaskQueue(name=task_queue))
    )
    return len(answer.workflow_task_queue_partitions), len(answer.activity_task_queue_partitions)


def dynamic_config(flags: list[str]) -> list[str]:
    """The ``--dynamic-config-value`` pairs among ``flags``."""
    out: list[str] = []
    for flag, value in itertools.pairwise(flags):
        if flag == "--dynamic-config-value":
            out += [flag, value]
    return out


async def test_make_run_s_dev_server_gives_the_task_queue_one_partition(
    dev_env: WorkflowEnvironment,
) -> None:
    module = run_local()
    command: list[str] = module.temporal_command(Settings(_env_file=None))
    tuning = dynamic_config(command)
    assert tuning, "make run passes no dynamic config to the dev server"
    assert dynamic_config(module.dev_server_flags()) == tuning  # the benchmarks' too
    queue = Settings(_env_file=None).task_queue
    tuned = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        dev_server_extra_args=tuning,
        port=free_port(),
    )
    async with tuned:
        assert await partitions(tuned.client, queue) == (1, 1)
    # The same question to a dev server with Temporal's defaults (the tests' own).
    assert await partitions(dev_env.client, queue) == (4, 4)
