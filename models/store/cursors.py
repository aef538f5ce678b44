"""Page cursors that only this service can write: ``<base64url payload>.<base64url HMAC>``.

A list answer's ``next_cursor`` carries where the page ended (a sort key and an id). It is
signed with HMAC-SHA256 under a key derived from the codec keys (``SENDMED_CODEC_KEYS``, the
same in every API process), so a cursor that was forged or altered - say, one pointing at
the year 9999 - is refused as a 422 before anything reads it. Every configured codec key is
tried when checking, so cursors stay valid across a key rotation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from models.adapters.codec import Keyring

CONTEXT = b"send-referrals list cursor v1"
TAG_BYTES = 16


class BadCursor(ValueError):
    """Not a cursor this API issued (malformed, forged or altered)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


class CursorSigner:
    """Signs with the active key's derived MAC key; accepts any configured key's."""

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        self._keys = {
            key_id: hmac.new(key, CONTEXT, hashlib.sha256).digest() for key_id, key in keys.items()
        }
        self._active = self._keys[active]

    @classmethod
    def from_keyring(cls, keyring: Keyring) -> CursorSigner:
        return cls(keyring.keys, keyring.active)

    @classmethod
    def development(cls) -> CursorSigner:
        """The public development key's: for tests and tools, never the API in production."""
        return cls.from_keyring(Keyring.development())

    @staticmethod
    def _tag(key: bytes, payload: bytes) -> bytes:
        return hmac.new(key, payload, hashlib.sha256).digest()[:TAG_BYTES]

    def sign(self, payload: bytes) -> str:
        return f"{_b64(payload)}.{_b64(self._tag(self._active, payload))}"

    def open(self, cursor: str) -> bytes:
        """The payload of a cursor this service signed; ``BadCursor`` otherwise."""
        body, dot, tag = cursor.partition(".")
        try:
            if not dot:
                raise ValueError("unsigned")
            payload, mac = _unb64(body), _unb64(tag)
        except (binascii.Error, ValueError) as exc:
            raise BadCursor("not a cursor from this API") from exc
        if not any(hmac.compare_digest(self._tag(k, payload), mac) for k in self._keys.values()):
            raise BadCursor("not a cursor from this API")
        return payload
