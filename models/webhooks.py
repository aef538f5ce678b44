"""Webhooks to back-office systems, signed the Standard Webhooks way.

Headers ``webhook-id`` (stable per event and subscription: receivers dedupe on it),
``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` over
``id.timestamp.body`` with the subscription's ``whsec_…`` secret), via the
``standardwebhooks`` package. Bodies are ``{"type", "timestamp", "data"}`` and never carry
personal data: ids, types, dates, document numbers and URLs only.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from models.delivery import PermanentFailure, TransientFailure, digest

DOCUMENT_EVENTS: Final[dict[str, str]] = {
    "certificate": "certificate.issued",
    "agreement": "agreement.signed",
    "invitation": "meeting.booked",
}
STATUS_EVENTS: Final[tuple[str, ...]] = (
    "referral.created",
    "referral.status_changed",
    "referral.closed",
    "deadline.breached",
    "deadline.met",  # only when it corrects an earlier deadline.breached (corrected: true)
    "meeting.cancelled",  # by cancel-meeting, or because the referral ended
    "referral.reopened",  # a closure by the clock corrected by a fact dated in time
)
EVENT_TYPES: Final[tuple[str, ...]] = (*DOCUMENT_EVENTS.values(), *STATUS_EVENTS)
EventType = Literal[
    "certificate.issued",
    "agreement.signed",
    "meeting.booked",
    "referral.created",
    "referral.status_changed",
    "referral.closed",
    "deadline.breached",
    "deadline.met",
    "meeting.cancelled",
    "referral.reopened",
]
assert get_args(EventType) == EVENT_TYPES

# The only event data forwarded, per type: codes and dates, never free text.
STATUS_EVENT_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "referral.created": ("route", "status"),
    "referral.status_changed": ("from", "to"),
    "referral.closed": ("outcome",),
    "deadline.breached": ("deadline", "rule"),
    "deadline.met": ("deadline", "rule", "due_on", "met_on", "corrected"),
    "meeting.cancelled": ("meeting", "cancelled_by", "reason"),
    "referral.reopened": ("reason", "party", "answered_on", "closed_on", "from_outcome"),
}
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


class WebhookSender:
    """POST a signed body; 2xx is delivered, other answers are classified (see module doc).

    The TLS context (the CA bundle, parsed) is built once per sender and shared by every
    send: building it per send was a third of the worker's CPU under load
    (docs/PERFORMANCE.md). Each send still has its own short-lived client, so no connection
    outlives the activity that opened it.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        allowed_hosts: frozenset[str] | None = None,
    ):
        self._timeout = timeout
        self._transport = transport
        # An egress allowlist: None lets any host through; tests allow only loopback.
        self._allowed_hosts = allowed_hosts
        self._tls: ssl.SSLContext | None = None

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._tls

    async def send(self, url: str, secret: str, msg_id: str, body: bytes) -> None:
        host = urlsplit(url).hostname or ""
        if self._allowed_hosts is not None and host not in self._allowed_hosts:
            raise PermanentFailure("webhook host not in SENDMED_WEBHOOK_ALLOWED_HOSTS")
        headers = signed_headers(secret, msg_id, datetime.now(UTC), body)
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                transport=self._transport,
                verify=self._tls_context(),
            ) as client:
                response = await client.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise TransientFailure(f"webhook endpoint unreachable ({type(exc).__name__})") from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        if status in RETRYABLE_STATUS or status >= 500:
            raise TransientFailure(f"HTTP {status}")
        raise PermanentFailure(f"HTTP {status}")
