"""``referral-<uuid>`` (the Temporal workflow id the Web UI shows) is accepted wherever the API
takes a referral id in the path: the id is rewritten to the bare uuid before anything else
(authentication, routing, metrics) sees the request, so every route and check stays as it is.
"""

from __future__ import annotations

import re
from typing import Final

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from models.messages import WORKFLOW_ID_PREFIX

_WORKFLOW_ID: Final = re.compile(
    rf"^(/v1/referrals/){re.escape(WORKFLOW_ID_PREFIX)}([0-9a-f-]{{36}})(?=/|$)"
)


def normalise_path(path: str) -> str:
    """``/v1/referrals/referral-<uuid>/…`` → ``/v1/referrals/<uuid>/…``; anything else as is."""
    return _WORKFLOW_ID.sub(r"\1\2", path, count=1)


class WorkflowIdPathMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            normal = normalise_path(path)
            if normal != path:
                scope = {**scope, "path": normal, "raw_path": normal.encode()}
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    """Outermost: before authentication, metrics and routing."""
    app.add_middleware(WorkflowIdPathMiddleware)
