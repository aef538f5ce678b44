"""Email: the message, and two ways to send it (SMTP with aiosmtplib, or .eml files).

Every message carries a ``Message-ID`` derived from its delivery key, so a copy sent again
after a crash is recognisably the same message. ``OutboxMailer`` (the embedded default: no
SMTP host configured) writes each message to ``<outbox>/<date>-<id>.eml``; writing the same
message twice replaces the file, so the sink itself never holds a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import os
import socket
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Protocol

import aiosmtplib
from email_validator import EmailNotValidError, validate_email
from pydantic import SecretStr

from models.adapters.delivery import PermanentFailure, TransientFailure, digest


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # "application/pdf", "text/calendar; method=PUBLISH"
    data: bytes


@dataclass(frozen=True)
class OutgoingMail:
    key: str
    sender: str  # envelope and From address
    sender_name: str
    to: str
    subject: str
    body: str
    date: datetime
    reply_to: str | None = None
    attachments: tuple[Attachment, ...] = field(default=())

    @property
    def message_id(self) -> str:
        return message_id(self.key, self.sender)

    def message(self) -> EmailMessage:
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["Message-ID"] = self.message_id
        msg["Date"] = format_datetime(self.date)
        msg["From"] = formataddr((self.sender_name, self.sender))
        msg["To"] = self.to
        if self.reply_to:
            msg["Reply-To"] = self.reply_to
        msg["Subject"] = self.subject
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(self.body, charset="utf-8")
        for attachment in self.attachments:
            maintype, _, rest = attachment.content_type.partition("/")
            subtype, _, params = rest.partition(";")
            msg.add_attachment(
                attachment.data,
                maintype=maintype,
                subtype=subtype.strip(),
                filename=attachment.filename,
                params=_params(params),
            )
        if msg.is_multipart():
            msg.set_boundary(f"=_{digest(self.key, 24)}")  # stable bytes on every attempt
        return msg

    def as_bytes(self) -> bytes:
        return self.message().as_bytes(policy=email.policy.SMTP)


def _params(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in raw.split(";"):
        name, _, value = item.strip().partition("=")
        if name and value:
            out[name] = value
    return out


def message_id(key: str, sender: str) -> str:
    """Stable per delivery key: ``<hash@sender-domain>``."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "send-referrals.invalid"
    return f"<{digest(key)}@{domain}>"


def checked_address(address: str) -> str:
    """The address normalised, or ``PermanentFailure`` (a malformed address never improves)."""
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise PermanentFailure("malformed email address") from exc
    normalised: str = result.normalized
    Address(addr_spec=normalised)  # the header registry must accept it too
    return normalised


class Mailer(Protocol):
    async def send(self, mail: OutgoingMail) -> None:
        """Hand the message over, or raise ``PermanentFailure``/``TransientFailure``."""
        ...


class SmtpMailer:
    """SMTP over aiosmtplib (STARTTLS or implicit TLS, optional login).

    With ``pool_size`` > 0 (the worker's), connections are kept for the next message (at
    most ``pool_size`` idle, each for at most ``idle_seconds``; ``aclose`` ends them):
    connecting, EHLO, STARTTLS and login cost more than the message itself
    (docs/PERFORMANCE.md). A kept connection the server has since closed hands nothing over,
    so the message goes once on a new connection instead. A connection that failed in any
    way is closed, never reused. With 0, each message has its own connection.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str = "",
        password: SecretStr | None = None,
        starttls: bool = True,
        implicit_tls: bool = False,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
        pool_size: int = 0,
        idle_seconds: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._starttls = starttls and not implicit_tls
        self._implicit_tls = implicit_tls
        self._timeout = timeout
        self._tls_context = tls_context
        self._pool_size = pool_size
        self._idle_seconds = idle_seconds
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hostname: str | None = None  # for EHLO: asked of DNS once, not per connection
        self.connections = 0  # opened so far (tests and benchmarks read it)

    async def send(self, mail: OutgoingMail) -> None:
        recipient = checked_address(mail.to)
        message = mail.message()
        try:
            kept = self._take()
            if kept is not None and await self._sent_on_kept(kept, message, mail.sender, recipient):
                return
            await self._deliver(await self._connect(), message, mail.sender, recipient)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise _by_code(min(codes) if codes else 550, "recipient refused") from exc
        except (aiosmtplib.SMTPAuthenticationError, aiosmtplib.SMTPSenderRefused) as exc:
            # Our configuration, not the recipient: keep retrying until an operator fixes it.
            raise TransientFailure(f"SMTP {exc.code}: server refused our login or sender") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, "server refused the message") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientFailure(f"SMTP unavailable ({type(exc).__name__})") from exc

    async def _connect(self) -> aiosmtplib.SMTP:
        if self._hostname is None:
            self._hostname = await asyncio.to_thread(socket.getfqdn)
        password = self._password.get_secret_value() if self._password else None
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username or None,
            password=password if self._username else None,
            use_tls=self._implicit_tls,
            start_tls=self._starttls,
            tls_context=self._tls_context,
            timeout=self._timeout,
            local_hostname=self._hostname,
        )
        try:
            await client.connect()
        except BaseException:
            client.close()
            raise
        self.connections += 1
        return client

    async def _sent_on_kept(
        self, client: aiosmtplib.SMTP, message: EmailMessage, sender: str, recipient: str
    ) -> bool:
        """Send on a kept connection: False if the server had closed it while it waited here
        (nothing was handed over on it: the caller sends on a new one)."""
        try:
            await self._deliver(client, message, sender, recipient)
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
            return False
        return True

    async def _deliver(
        self, client: aiosmtplib.SMTP, message: EmailMessage, sender: str, recipient: str
    ) -> None:
        try:
            await client.send_message(message, sender=sender, recipients=[recipient])
        except BaseException:
            client.close()
            raise
        if not self._keep(client):
            await _goodbye(client)

    def _take(self) -> aiosmtplib.SMTP | None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a connection belongs to the loop that opened it
            self._idle, self._loop = [], loop
        now = loop.time()
        while self._idle:
            client, since = self._idle.pop()
            if client.is_connected and now - since < self._idle_seconds:
                return client
            client.close()
        return None

    def _keep(self, client: aiosmtplib.SMTP) -> bool:
        """Keep ``client`` for the next message if there is room; whether it was kept."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._idle, self._loop = [], loop
        if client.is_connected and len(self._idle) < self._pool_size:
            self._idle.append((client, loop.time()))
            return True
        return False

    async def aclose(self) -> None:
        """Say goodbye on every kept connection (the worker, shutting down)."""
        idle, self._idle = self._idle, []
        for client, _ in idle:
            await _goodbye(client)


async def _goodbye(client: aiosmtplib.SMTP) -> None:
    """QUIT, then close whatever the server did not."""
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
        await client.quit()
    client.close()


def _by_code(code: int, what: str) -> PermanentFailure | TransientFailure:
    if 500 <= code < 600:
        return PermanentFailure(f"SMTP {code}: {what}")
    return TransientFailure(f"SMTP {code}: {what}")


class OutboxMailer:
    """The embedded default: each message becomes an ``.eml`` file a developer can open."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, mail: OutgoingMail) -> Path:
        stamp = mail.date.strftime("%Y%m%dT%H%M%SZ")
        return self.directory / f"{stamp}-{digest(mail.key, 16)}.eml"

    async def send(self, mail: OutgoingMail) -> None:
        checked_address(mail.to)
        await asyncio.to_thread(self._write, self.path_for(mail), mail.as_bytes())

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)  # atomic: a reader never sees half a message
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def messages(self) -> Sequence[Path]:
        return sorted(self.directory.glob("*.eml")) if self.directory.exists() else []
