"""Webhook signing secrets sealed at rest with the codec key (AES-256-GCM).

A subscription's ``whsec_…`` secret is shown once, when it is created; the database keeps it
sealed: ``s1.<key fingerprint>.<base64url(nonce || ciphertext)>``, the subscription's id
bound in as associated data (a sealed secret copied onto another row does not open). The key
is the active codec key (``SENDMED_CODEC_KEYS``); the fingerprint (8 hex of the key id's
SHA-256) names it, so secrets sealed before a rotation still open while the old key is kept.

Rows written before sealing hold the plain secret: :func:`unseal` returns it as it is, and
``models/store/subscriptions.py`` seals them in place when the worker starts.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from models.adapters.codec import NONCE_BYTES, CodecError, Keyring

PREFIX = "s1."


def _fingerprint(key_id: str) -> str:
    return hashlib.sha256(key_id.encode()).hexdigest()[:8]


def _aad(subscription_id: str) -> bytes:
    return b"webhook-secret|" + subscription_id.encode()


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def seal(keyring: Keyring, secret: str, subscription_id: str) -> str:
    key_id = keyring.active
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(keyring.keys[key_id]).encrypt(nonce, secret.encode(), _aad(subscription_id))
    blob = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
    return f"{PREFIX}{_fingerprint(key_id)}.{blob}"


def unseal(keyring: Keyring, stored: str, subscription_id: str) -> str:
    """The secret; a plain (legacy) one as it is. ``CodecError`` if it cannot be opened."""
    if not is_sealed(stored):
        return stored
    fingerprint, _, blob = stored.removeprefix(PREFIX).partition(".")
    raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
    for key_id, key in keyring.keys.items():
        if _fingerprint(key_id) != fingerprint:
            continue
        try:
            plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(subscription_id))
        except InvalidTag:
            continue
        return plain.decode()
    raise CodecError("webhook secret sealed with a codec key that is not configured")
