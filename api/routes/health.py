"""Liveness and readiness: public, no authentication."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import EngineDep, TemporalDep
from api.errors import PROBLEM_JSON
from models.store.db import ping

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT = 3.0


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Temporal and the database are reachable",
    responses={503: {"description": "A dependency is unreachable; the body names it."}},
)
async def readyz(temporal: TemporalDep, engine: EngineDep) -> JSONResponse:
    async def temporal_check() -> None:
        await temporal.service_client.check_health(timeout=timedelta(seconds=CHECK_TIMEOUT))

    async def database_check() -> None:
        await ping(engine)

    checks: dict[str, str] = {}
    failing: list[str] = []
    for name, check in (("temporal", temporal_check), ("database", database_check)):
        try:
            await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT + 1)
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready
            checks[name] = f"unreachable ({type(exc).__name__})"
            failing.append(name)
    if not failing:
        return JSONResponse({"status": "ready", "checks": checks})
    body: dict[str, Any] = {
        "type": "https://send-referrals.dev/problems/not-ready",
        "title": "Service not ready",
        "status": 503,
        "detail": f"Unreachable: {', '.join(failing)}",
        "checks": checks,
    }
    return JSONResponse(body, status_code=503, media_type=PROBLEM_JSON)
