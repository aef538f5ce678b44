"""Every call from the API to Temporal is bounded, and Temporal being away is a 503.

A referral's create and commands wait for the workflow to answer (update-with-start, update);
reads of a closed referral query it. Each such call runs inside :func:`bounded`:

- a deadline (``temporal_rpc_timeout_seconds``, 5 s, for starts, queries and other single
  calls; ``temporal_update_timeout_seconds``, 20 s, for a command, which waits for the
  workflow to apply it and project the new state), well under a client's usual 30-60 s
  timeout;
- the frontend refusing connections, a failed (lazy) connect, ``UNAVAILABLE``,
  ``DEADLINE_EXCEEDED`` and the deadline itself become **503** problem+json
  (``temporal-unavailable``) with ``Retry-After``: nothing was lost, the same request (with its
  ``Idempotency-Key``) may be sent again. An update that was accepted before the deadline
  still completes in the workflow; the retry, carrying the same update id, gets its answer.

The client is created lazily and pooled for the process; a failed connect leaves it
unconnected, so the next request connects again (nothing to restart).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Final

from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Problem

RETRY_AFTER: Final = "5"
#: RPC outcomes that mean "Temporal is not answering now", not "this request is wrong".
UNAVAILABLE_CODES: Final = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)
CONNECT_FAILED: Final = "Failed client connect"


def unavailable(detail: str) -> Problem:
    return Problem(
        503,
        "Temporarily unavailable",
        detail,
        type_="temporal-unavailable",
        headers={"Retry-After": RETRY_AFTER},
    )


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says Temporal could not be reached or did not answer in time."""
    if isinstance(exc, RPCError):
        return exc.status in UNAVAILABLE_CODES
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError | TimeoutError):
        return True
    return isinstance(exc, RuntimeError) and str(exc).startswith(CONNECT_FAILED)


@asynccontextmanager
async def bounded(seconds: float) -> AsyncIterator[timedelta]:
    """Run Temporal calls within ``seconds`` (yielded as the RPC timeout to pass on); 503 if
    Temporal is away or too slow."""
    try:
        async with asyncio.timeout(seconds):
            yield timedelta(seconds=seconds)
    except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError, RuntimeError) as exc:
        if not is_unavailable(exc):
            raise
        raise unavailable(
            f"The workflow service did not answer within {seconds:g} s. Send the same request "
            "again shortly, with the same Idempotency-Key: it is applied once."
        ) from exc
