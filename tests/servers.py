"""Small real servers that play the outside world in tests: an SMTP server (aiosmtpd) and a
back office receiving Standard Webhooks (Starlette under uvicorn). Shared by every tier."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from models.adapters.mail import SmtpMailer
from tests.conftest import free_port, serve_api

# --------------------------------------------------------------------------- SMTP


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    peer: object = None  # the client's (address, port): one per SMTP connection

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def plain_text(message: EmailMessage) -> str:
    """The plain-text body of a received message."""
    body = message.get_body(("plain",))
    assert body is not None
    text: str = body.get_content()
    return text


@dataclass
class Sink:
    """An aiosmtpd handler: stores what it accepts; can refuse, fail for now, or stall."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, int] = field(default_factory=dict)
    temp_fail_data: int = 0
    stall_before_accept: float = 0.0
    stall_after_accept: float = 0.0
    hold_data: bool = False  # every message waits in DATA, not accepted, while this is True
    in_data: int = 0  # DATA commands being handled right now (held, stalled or storing)
    data_started: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        code = self.refuse.get(address)
        if code is not None:
            return f"{code} 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.data_started.set()
        self.in_data += 1
        try:
            return await self._data(envelope, session.peer)
        finally:
            self.in_data -= 1

    async def _data(self, envelope: Envelope, peer: object = None) -> str:
        if self.temp_fail_data > 0:
            self.temp_fail_data -= 1
            return "451 4.3.0 please try again later"
        if self.stall_before_accept:
            stall, self.stall_before_accept = self.stall_before_accept, 0.0
            await asyncio.sleep(stall)  # cancelled if the client goes away: nothing stored
        # Set from the test's thread (another event loop): polled, not an asyncio.Event.
        while self.hold_data:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # cancelled if the client goes away: nothing stored
        content = envelope.original_content or envelope.content or b""
        assert isinstance(content, bytes)
        with self.lock:
            self.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), content, peer)
            )
        if self.stall_after_accept:
            stall, self.stall_after_accept = self.stall_after_accept, 0.0
            await asyncio.sleep(stall)  # accepted, but the client never hears so
        return "250 OK: queued"

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages() if address in m.rcpt_tos]


@dataclass
class SmtpServer:
    host: str
    port: int
    sink: Sink

    def mailer(self, timeout: float = 5.0) -> SmtpMailer:
        return SmtpMailer(self.host, self.port, starttls=False, timeout=timeout)


# --------------------------------------------------------------------------- webhooks


@dataclass
class Delivered:
    endpoint: str
    webhook_id: str
    payload: dict[str, Any]
    body: bytes
    peer: object = None  # the sender's (address, port): one per HTTP connection


@dataclass
class Receiver:
    """A back office: verifies each signature with the endpoint's secret, then answers."""

    base_url: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    answers: dict[str, list[int]] = field(default_factory=dict)
    delivered: list[Delivered] = field(default_factory=list)
    bad_signatures: int = 0

    def url(self, endpoint: str) -> str:
        return f"{self.base_url}/hooks/{endpoint}"

    async def handle(self, request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        body = await request.body()
        secret = self.secrets.get(endpoint)
        if secret is None:
            return Response(status_code=404)
        try:
            payload = Webhook(secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.bad_signatures += 1
            return JSONResponse({"error": "bad signature"}, status_code=401)
        queue = self.answers.get(endpoint, [])
        status = queue.pop(0) if queue else 204
        if 200 <= status < 300:
            self.delivered.append(
                Delivered(endpoint, request.headers["webhook-id"], payload, body, request.client)
            )
        return Response(status_code=status)

    def at(self, endpoint: str) -> list[Delivered]:
        return [d for d in self.delivered if d.endpoint == endpoint]


@contextmanager
def smtp_server(port: int | None = None) -> Iterator[SmtpServer]:
    """A real SMTP server on ``port`` (default: a free one)."""
    sink = Sink()
    port = port or free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, sink)
    finally:
        controller.stop()


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    hooks = Receiver()
    app = Starlette(routes=[Route("/hooks/{endpoint}", hooks.handle, methods=["POST"])])
    async with serve_api(app, free_port()) as base_url:
        hooks.base_url = base_url
        yield hooks
