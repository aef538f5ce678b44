"""The one way to reach Temporal: every client uses the pydantic data converter."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

TASK_QUEUE_DEFAULT = "send-referrals"


def workflow_id(referral_id: str) -> str:
    """Workflow id of a referral. Ids are random UUIDs: never personal data."""
    return f"referral-{referral_id}"


def referral_id_from_workflow_id(wf_id: str) -> str:
    return wf_id.removeprefix("referral-")


async def connect(target: str, namespace: str = "default", *, lazy: bool = False) -> Client:
    return await Client.connect(
        target,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
    )
