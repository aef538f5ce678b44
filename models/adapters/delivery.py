"""What every outbound send shares: how failures are classified, and stable ids.

A **permanent** failure (SMTP 5xx or a malformed address, a webhook 4xx other than 408/429)
will not get better by retrying: the delivery is marked failed and the provider is told. A
**transient** one (4xx SMTP replies, timeouts, refused connections, HTTP 408/429/5xx) is
raised so that Temporal retries the activity with backoff. ``detail`` strings go into the
database, the API and logs, so they never carry an address or a server's free text.
"""

from __future__ import annotations

import hashlib


class DeliveryFailure(Exception):
    """A send did not succeed; ``detail`` is safe to store and show (no personal data)."""

    permanent = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PermanentFailure(DeliveryFailure):
    permanent = True


class TransientFailure(DeliveryFailure):
    permanent = False


def digest(key: str, length: int = 32) -> str:
    """A stable hex id derived from a delivery key (Message-ID, webhook-id, file names)."""
    return hashlib.sha256(key.encode()).hexdigest()[:length]
