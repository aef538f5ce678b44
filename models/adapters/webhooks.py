"""Webhooks to back-office systems, signed the Standard Webhooks way.

Headers ``webhook-id`` (stable per event and subscription: receivers dedupe on it),
``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` over
``id.timestamp.body`` with the subscription's ``whsec_…`` secret), via the
``standardwebhooks`` package. Bodies are ``{"type", "timestamp", "data"}`` and never carry
personal data: ids, types, dates, document numbers and URLs only.

**Never aimed inward** (:class:`EgressPolicy`): a webhook goes only to public addresses -
never loopback, private, link-local (cloud metadata at 169.254.169.254 included), shared,
reserved or multicast ones - unless ``SENDMED_WEBHOOK_ALLOWED_HOSTS`` names the host, the
address or its network (CIDR). A subscription is checked when it is created, and every send
resolves the host again, checks *every* address it resolves to and connects to the address
it checked (the ``Host`` header and TLS name stay the URL's), so a DNS answer that changes
after the check (rebinding) cannot turn a send inward.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import secrets
import socket
import ssl
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from models.adapters.delivery import PermanentFailure, TransientFailure, digest

RETRYABLE_STATUS: Final = frozenset({408, 429})


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks format (``whsec_`` + base64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_id(key: str) -> str:
    return f"msg_{digest(key)}"


def body_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signed_headers(secret: str, msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    at = at.astimezone(UTC)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body.decode())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "user-agent": "send-referrals-webhooks/1",
    }


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
RESOLVE_TIMEOUT: Final = 5.0
ALLOWLIST_SETTING: Final = "SENDMED_WEBHOOK_ALLOWED_HOSTS"


def _public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class EgressPolicy:
    """Where webhooks may go: public addresses, plus the hosts, addresses and networks the
    allowlist names (``public=False``: only those; the test suites run so)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    public: bool = True

    @classmethod
    def from_entries(cls, entries: Iterable[str], *, public: bool = True) -> EgressPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks), public)

    def refusal(self, host: str, addresses: Sequence[IPAddress]) -> str | None:
        """Why ``host`` (resolved to ``addresses``) may not be reached; None if it may."""
        if host.lower().rstrip(".") in self.hosts:
            return None
        if not addresses:
            return "the webhook host does not resolve"
        for address in addresses:
            if any(address in network for network in self.networks):
                continue
            if self.public and _public(address):
                continue
            if self.public:
                return (
                    "the webhook address is internal (loopback, private, link-local or "
                    f"reserved) and not in {ALLOWLIST_SETTING}"
                )
            return f"the webhook host is not in {ALLOWLIST_SETTING}"
        return None


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int, within: float = RESOLVE_TIMEOUT) -> list[IPAddress]:
    """Every address ``host`` resolves to (an address literal: itself); [] if none."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(within):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        return []
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def default_port(scheme: str, port: int | None) -> int:
    return port if port is not None else (443 if scheme == "https" else 80)


class WebhookSender:
    """POST a signed body; 2xx is delivered, other answers are classified (see module doc).

    The TLS context (the CA bundle, parsed) is built once per sender and shared by every
    send: building it per send was a third of the worker's CPU under load
    (docs/PERFORMANCE.md). With ``keep_clients`` > 0 (the worker's), connections are kept
    for the next send (``idle_seconds``; ``aclose`` ends them), by a client per endpoint
    *and* the address its check allowed: a kept connection only ever carries requests for
    the one host name it was opened (and its certificate checked) for, to the one address
    that was checked; at most ``keep_clients`` endpoints are kept. With 0, each send has its
    own client, closed after it.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        allowed_hosts: Iterable[str] = (),
        allow_public: bool = True,
        keep_clients: int = 0,
        idle_seconds: float = 2.0,  # under common servers' keep-alive (uvicorn's is 5 s)
    ):
        self._timeout = timeout
        self._transport = transport
        self.policy = EgressPolicy.from_entries(allowed_hosts, public=allow_public)
        self._tls: ssl.SSLContext | None = None
        self._keep_clients = keep_clients
        self._limits = httpx.Limits(max_keepalive_connections=4, keepalive_expiry=idle_seconds)
        self._clients: OrderedDict[tuple[str, str, str, int], httpx.AsyncClient] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._tls

    async def _client(self, key: tuple[str, str, str, int]) -> httpx.AsyncClient | None:
        """The kept client for (scheme, host name, checked address, port), if any is kept."""
        if self._keep_clients <= 0:
            return None
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that opened them
            self._clients, self._loop = OrderedDict(), loop
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        client = self._new_client()
        self._clients[key] = client
        while len(self._clients) > self._keep_clients:
            _, oldest = self._clients.popitem(last=False)
            await oldest.aclose()
        return client

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            transport=self._transport,
            verify=self._tls_context(),
            limits=self._limits,
        )

    async def aclose(self) -> None:
        """Close every kept connection (the worker, shutting down)."""
        clients, self._clients = self._clients, OrderedDict()
        for client in clients.values():
            await client.aclose()

    async def send(self, url: str, secret: str, msg_id: str, body: bytes) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        addresses = await resolve(host, default_port(parts.scheme, parts.port))
        refused = self.policy.refusal(host, addresses)
        if refused is not None:
            if not addresses:
                raise TransientFailure(refused)  # DNS may answer again later
            raise PermanentFailure(refused)
        headers = signed_headers(secret, msg_id, datetime.now(UTC), body)
        target = httpx.URL(url)
        extensions: dict[str, Any] = {}
        if literal_address(host) is None:
            # Connect to the address just checked, not to whatever DNS answers next.
            headers["host"] = parts.netloc.rpartition("@")[2]
            target = target.copy_with(host=str(addresses[0]))
            if parts.scheme == "https":
                extensions["sni_hostname"] = host
        kept = await self._client((parts.scheme, host, str(target.host), target.port or 0))
        client = kept if kept is not None else self._new_client()
        try:
            request = client.build_request(
                "POST", target, content=body, headers=headers, extensions=extensions
            )
            response = await client.send(request)
        except httpx.TransportError as exc:
            raise TransientFailure(f"webhook endpoint unreachable ({type(exc).__name__})") from exc
        finally:
            if kept is None:
                await client.aclose()
        status = response.status_code
        if 200 <= status < 300:
            return
        if status in RETRYABLE_STATUS or status >= 500:
            raise TransientFailure(f"HTTP {status}")
        raise PermanentFailure(f"HTTP {status}")
