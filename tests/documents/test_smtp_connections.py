"""SmtpMailer keeps its connection for the next message (as the worker builds it), against
a real SMTP server (aiosmtpd): fewer connections, and never a message lost or sent twice
because of it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller

from models.adapters.delivery import PermanentFailure
from models.adapters.mail import OutgoingMail, SmtpMailer
from tests.conftest import free_port
from tests.documents.conftest import Closable
from tests.servers import Sink, SmtpServer, smtp_server
from worker import KEPT_SMTP_CONNECTIONS


def mail(n: int, to: str = "family@example.org") -> OutgoingMail:
    return OutgoingMail(
        key=f"test:{n}",
        sender="mediation@provider.example.org",
        sender_name="Provider",
        to=to,
        subject=f"Message {n}",
        body=f"Body {n}",
        date=datetime(2026, 12, 6, 9, 0, tzinfo=UTC),
    )


def subjects(server: SmtpServer) -> list[str]:
    return [str(m.message["Subject"]) for m in server.sink.messages()]


def peers(server: SmtpServer) -> list[object]:
    return [m.peer for m in server.sink.messages()]


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with smtp_server() as running:
        yield running


def keeping(
    server: SmtpServer,
    closing: list[Closable],
    *,
    pool_size: int = KEPT_SMTP_CONNECTIONS,
    idle_seconds: float = 10.0,
) -> SmtpMailer:
    mailer = SmtpMailer(
        server.host,
        server.port,
        starttls=False,
        timeout=5,
        pool_size=pool_size,
        idle_seconds=idle_seconds,
    )
    closing.append(mailer)
    return mailer


async def test_without_a_pool_each_message_has_its_own_connection(server: SmtpServer) -> None:
    mailer = server.mailer()  # as tests and tools build it: nothing kept
    for n in range(2):
        await mailer.send(mail(n))
    assert subjects(server) == ["Message 0", "Message 1"]
    assert len(set(peers(server))) == 2


async def test_messages_one_after_another_share_one_connection(
    server: SmtpServer, closing: list[Closable]
) -> None:
    mailer = keeping(server, closing)
    for n in range(3):
        await mailer.send(mail(n))
    assert subjects(server) == ["Message 0", "Message 1", "Message 2"]
    assert len(set(peers(server))) == 1  # the server saw one client connection
    assert mailer.connections == 1


async def test_a_connection_idle_too_long_is_not_reused(
    server: SmtpServer, closing: list[Closable]
) -> None:
    mailer = keeping(server, closing, idle_seconds=0.0)
    await mailer.send(mail(0))
    await mailer.send(mail(1))
    assert subjects(server) == ["Message 0", "Message 1"]
    assert len(set(peers(server))) == 2
    assert mailer.connections == 2


async def test_a_kept_connection_closed_by_a_restarted_server_sends_the_next_message_once(
    closing: list[Closable],
) -> None:
    """The server goes away and comes back on the same port while the mailer keeps a
    connection: the next message finds it closed and goes once, on a new connection."""
    port = free_port()
    first = Sink()
    controller = Controller(first, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    mailer = SmtpMailer("127.0.0.1", port, starttls=False, timeout=5, pool_size=1)
    closing.append(mailer)
    try:
        await mailer.send(mail(0))
    finally:
        controller.stop()
    second = Sink()
    controller = Controller(second, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        await mailer.send(mail(1))
    finally:
        controller.stop()
    assert [str(m.message["Subject"]) for m in first.messages()] == ["Message 0"]
    assert [str(m.message["Subject"]) for m in second.messages()] == ["Message 1"]
    assert mailer.connections == 2


async def test_a_refused_recipient_closes_the_connection_and_the_next_message_still_goes(
    server: SmtpServer, closing: list[Closable]
) -> None:
    server.sink.refuse["nobody@example.org"] = 550
    mailer = keeping(server, closing)
    await mailer.send(mail(0))
    with pytest.raises(PermanentFailure, match="550"):
        await mailer.send(mail(1, to="nobody@example.org"))
    await mailer.send(mail(2))
    assert subjects(server) == ["Message 0", "Message 2"]
    assert mailer.connections == 2  # the failed one was not handed to the next message
    assert len(set(peers(server))) == 2


async def test_messages_sent_at_once_each_arrive_once_on_at_most_the_pool_s_connections(
    server: SmtpServer, closing: list[Closable]
) -> None:
    mailer = keeping(server, closing, pool_size=2)
    await asyncio.gather(*(mailer.send(mail(n)) for n in range(6)))
    await asyncio.gather(*(mailer.send(mail(n)) for n in range(6, 12)))
    assert sorted(subjects(server)) == sorted(f"Message {n}" for n in range(12))
    # 6 at once need 6 connections; 2 are kept, so the second wave opens only 4 more.
    assert mailer.connections == 10


async def test_closing_says_goodbye_on_every_kept_connection(
    server: SmtpServer, closing: list[Closable]
) -> None:
    mailer = keeping(server, closing)
    await asyncio.gather(*(mailer.send(mail(n)) for n in range(2)))
    kept = [client for client, _ in mailer._idle]
    assert len(kept) == 2
    assert all(client.is_connected for client in kept)
    await mailer.aclose()
    assert not any(client.is_connected for client in kept)
    await mailer.send(mail(2))  # still usable: a new connection
    assert len(subjects(server)) == 3
