"""Small helpers for driving the API like a back office would."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx

T = TypeVar("T")

LONDON = ZoneInfo("Europe/London")


def today() -> date:
    return datetime.now(UTC).astimezone(LONDON).date()


def london_at(day: date, hour: int = 10) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=LONDON).isoformat()


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def create(http: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    return await ok(await http.post("/v1/referrals", json=body, headers=headers), 201)


async def command(
    http: httpx.AsyncClient, referral_id: str, name: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await http.post(f"/v1/referrals/{referral_id}/{name}", json=body)


def meeting_day(days_ahead: int = 14) -> date:
    day = today() + timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


async def eventually(check: Callable[[], Awaitable[T | None]], seconds: float = 20) -> T:
    """Poll ``check`` until it returns something truthy (the worker acts after the answer)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)
