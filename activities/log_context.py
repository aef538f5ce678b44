"""Every log line an activity writes names its referral: ``referral_id``, never personal data.

:class:`ReferralLogContext` is a worker interceptor (``worker.build_worker`` installs it). For
each activity it sets :data:`models.adapters.logging.referral_context` to the referral the
activity works for — from its workflow id (``referral-<uuid>``) or else from its input's
``referral_id`` — for the duration of the activity, so the handler's
:class:`~models.adapters.logging.ReferralContextFilter` adds it to every record, including
those of the libraries the activity calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from models.adapters.logging import referral_context
from models.messages import WORKFLOW_ID_PREFIX


def referral_of(workflow_id: str, args: Sequence[Any]) -> str | None:
    """The referral an activity works for, or None (e.g. the retention sweep)."""
    if workflow_id.startswith(WORKFLOW_ID_PREFIX):
        return workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
    for arg in args:
        found = getattr(arg, "referral_id", None)
        if isinstance(found, str) and found:
            return found
    return None


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        token = referral_context.set(referral_of(info.workflow_id or "", input.args))
        try:
            return await super().execute_activity(input)
        finally:
            referral_context.reset(token)


class ReferralLogContext(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)
