"""``keepalive`` (the sends' heartbeats), run inside the SDK's activity environment: a send
shorter than the first interval costs the server no heartbeat; a longer one beats on."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from temporalio.testing import ActivityEnvironment

from activities.dispatch import keepalive


def environment(heartbeat_timeout: timedelta | None) -> tuple[ActivityEnvironment, list[object]]:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=heartbeat_timeout)
    beats: list[object] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    return env, beats


async def send_lasting(seconds: float) -> None:
    async with keepalive():
        await asyncio.sleep(seconds)


async def test_a_send_shorter_than_the_first_interval_sends_no_heartbeat() -> None:
    env, beats = environment(timedelta(seconds=2))  # first beat after 0.5 s
    await env.run(send_lasting, 0.1)
    assert beats == []


async def test_a_longer_send_beats_every_quarter_of_its_timeout() -> None:
    env, beats = environment(timedelta(seconds=1))  # every 0.25 s
    await env.run(send_lasting, 0.9)
    assert 2 <= len(beats) <= 4


async def test_no_heartbeat_timeout_no_heartbeats() -> None:
    env, beats = environment(None)
    await env.run(send_lasting, 0.3)
    assert beats == []
