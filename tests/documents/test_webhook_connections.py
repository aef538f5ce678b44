"""WebhookSender keeps a connection per endpoint for the next send, against a real receiver
over real HTTP (uvicorn): fewer connections, never one shared between host names, and a
send still arrives once when the receiver has closed the kept connection."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.routing import Route

from models.adapters.webhooks import WebhookSender
from tests.conftest import free_port, serve_api
from tests.documents.conftest import Closable, Receiver
from worker import KEPT_WEBHOOK_ENDPOINTS

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # test-only
LOOPBACK = ["127.0.0.0/8", "::1"]


def keeping(
    closing: list[Closable],
    *,
    keep_clients: int = KEPT_WEBHOOK_ENDPOINTS,
    idle_seconds: float = 2.0,
) -> WebhookSender:
    sender = WebhookSender(
        timeout=5,
        allowed_hosts=LOOPBACK,
        allow_public=False,
        keep_clients=keep_clients,
        idle_seconds=idle_seconds,
    )
    closing.append(sender)
    return sender


def peers(receiver: Receiver, endpoint: str) -> set[object]:
    return {d.peer for d in receiver.at(endpoint)}


async def test_without_kept_clients_each_send_has_its_own_connection(receiver: Receiver) -> None:
    receiver.secrets["a"] = SECRET
    sender = WebhookSender(timeout=5, allowed_hosts=LOOPBACK, allow_public=False)
    for n in range(2):
        await sender.send(receiver.url("a"), SECRET, f"msg_{n}", b"{}")
    assert len(peers(receiver, "a")) == 2


async def test_sends_to_one_endpoint_share_a_connection(
    receiver: Receiver, closing: list[Closable]
) -> None:
    receiver.secrets["a"] = SECRET
    sender = keeping(closing)
    for n in range(3):
        await sender.send(receiver.url("a"), SECRET, f"msg_{n}", b"{}")
    assert [d.webhook_id for d in receiver.at("a")] == ["msg_0", "msg_1", "msg_2"]
    assert len(peers(receiver, "a")) == 1


async def test_two_host_names_on_one_address_never_share_a_connection(
    receiver: Receiver, closing: list[Closable]
) -> None:
    """``localhost`` and ``127.0.0.1`` reach the same socket; each keeps its own connection
    (for https a connection is checked against one name's certificate only)."""
    port = receiver.base_url.rsplit(":", 1)[1]
    receiver.secrets["by-name"] = SECRET
    receiver.secrets["by-address"] = SECRET
    sender = keeping(closing)
    for n in range(2):
        await sender.send(f"http://localhost:{port}/hooks/by-name", SECRET, f"n{n}", b"{}")
        await sender.send(f"http://127.0.0.1:{port}/hooks/by-address", SECRET, f"a{n}", b"{}")
    assert len(peers(receiver, "by-name")) == 1
    assert len(peers(receiver, "by-address")) == 1
    assert peers(receiver, "by-name").isdisjoint(peers(receiver, "by-address"))


async def test_a_connection_idle_longer_than_its_expiry_is_not_reused(
    receiver: Receiver, closing: list[Closable]
) -> None:
    receiver.secrets["a"] = SECRET
    sender = keeping(closing, idle_seconds=0.05)
    await sender.send(receiver.url("a"), SECRET, "msg_0", b"{}")
    await asyncio.sleep(0.3)
    await sender.send(receiver.url("a"), SECRET, "msg_1", b"{}")
    assert len(peers(receiver, "a")) == 2


async def test_a_receiver_restarted_between_sends_gets_the_next_one_once(
    closing: list[Closable],
) -> None:
    """The receiver stops (closing the kept connection) and starts again on its port: the
    next send goes on a new connection and arrives once."""
    port = free_port()
    first, second = Receiver(), Receiver()
    sender = keeping(closing)
    for n, hooks in enumerate((first, second)):
        hooks.secrets["a"] = SECRET
        app = Starlette(routes=[Route("/hooks/{endpoint}", hooks.handle, methods=["POST"])])
        async with serve_api(app, port) as base_url:
            hooks.base_url = base_url
            await sender.send(hooks.url("a"), SECRET, f"msg_{n}", b"{}")
    assert [d.webhook_id for d in first.delivered] == ["msg_0"]
    assert [d.webhook_id for d in second.delivered] == ["msg_1"]


async def test_only_the_most_recent_endpoints_keep_a_client(
    receiver: Receiver, closing: list[Closable]
) -> None:
    sender = keeping(closing, keep_clients=1)
    port = receiver.base_url.rsplit(":", 1)[1]
    receiver.secrets["a"] = SECRET
    for n, host in enumerate(["127.0.0.1", "localhost", "127.0.0.1"]):  # one too many
        await sender.send(f"http://{host}:{port}/hooks/a", SECRET, f"msg_{n}", b"{}")
    first, second, third = (d.peer for d in receiver.at("a"))
    # 127.0.0.1's client was closed to keep localhost's: the third send opens a new one.
    assert len({first, second, third}) == 3
