"""The one way to reach Temporal: every client uses the pydantic data converter.

With a payload codec (``models.codec.EncryptionCodec``, built from settings by the worker and
the API) every payload and every failure message is encrypted before it reaches Temporal.
"""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

TASK_QUEUE_DEFAULT = "send-referrals"


def workflow_id(referral_id: str) -> str:
    """Workflow id of a referral. Ids are random UUIDs: never personal data."""
    return f"referral-{referral_id}"


def referral_id_from_workflow_id(wf_id: str) -> str:
    return wf_id.removeprefix("referral-")


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """Pydantic payloads; with a codec, payloads and failure messages/stack traces encoded."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(
    target: str,
    namespace: str = "default",
    *,
    lazy: bool = False,
    converter: DataConverter | None = None,
) -> Client:
    return await Client.connect(
        target,
        namespace=namespace,
        data_converter=converter if converter is not None else pydantic_data_converter,
        lazy=lazy,
    )
