"""Encryption of everything the service hands to Temporal: a ``PayloadCodec`` with rotatable keys.

Every payload (workflow inputs and results, activity arguments, updates, queries, memos,
summaries and, through the encoded-attributes failure converter, error messages) is
compressed with zlib and then encrypted with AES-256-GCM before it leaves the process, so
Temporal's history, its database and its Web UI hold ciphertext only. The Web UI shows the
plain payloads through the API's codec endpoint (``api/routes/codec.py``).

An encrypted payload looks like this (``metadata`` is stored in clear, ``data`` is not)::

    metadata: {"encoding": "binary/encrypted",
               "encryption-key-id": "<key id>",
               "encryption-scheme": "zlib+aes-256-gcm/v1"}
    data:     12-byte nonce || AES-GCM(key, nonce, zlib(serialised original payload),
                                       aad = scheme || key id)

Rotation: the codec encrypts with the *active* key and decrypts with whichever key the
payload names, so adding a new key, making it active and keeping the old ones lets running
and historic workflows (whose histories were written under older keys) replay unchanged.
Retire an old key only once no history written under it is retained any more.

Key material comes from settings (``codec_keys``/``codec_active_key_id``, read by
``Settings.codec_keyring()``; this module knows nothing of settings): production refuses to
start without real keys; development and tests use :data:`DEV_KEY_ID`, a fixed key derived
from a public string, which protects nothing and exists only so that ``make run`` exercises
the same code path as production.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
SCHEME_KEY = "encryption-scheme"
SCHEME = b"zlib+aes-256-gcm/v1"
NONCE_BYTES = 12
KEY_BYTES = 32
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

DEV_KEY_ID = "dev-insecure"
#: NOT SECRET. Development and test only: derived from this public string, so anyone can
#: decrypt what it encrypts. Production refuses it (``Settings``, the one place that says so).
DEV_KEY_BYTES = hashlib.sha256(
    b"send-referrals development payload key - public, never for real data"
).digest()


#: No payload the service writes comes near this decompressed (Temporal refuses payloads
#: over 2 MB by default); a bound, so that a small crafted payload cannot inflate to gigabytes.
MAX_DECODED_BYTES = 64 * 1024 * 1024


class CodecError(ValueError):
    """A payload cannot be decrypted: unknown key id, tampered or corrupt data."""


class TooLarge(CodecError):
    """A payload that would decompress to more than allowed."""


def _inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise CodecError("payload does not decompress") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"payload larger than {limit} bytes once decompressed")
    return out


def generate_key() -> str:
    """A new random 256-bit key, base64 (for ``SENDMED_CODEC_KEYS``)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def decode_key(key_id: str, value: str) -> bytes:
    """A base64 (standard or URL-safe) 32-byte key; a clear error otherwise."""
    if not KEY_ID_PATTERN.match(key_id):
        raise ValueError(f"codec key id {key_id!r}: letters, digits, '.', '_' or '-' (max 64)")
    text = value.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"codec key {key_id!r} is not base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"codec key {key_id!r} must be {KEY_BYTES} bytes (base64 of 32 bytes)")
    return raw


@dataclass(frozen=True)
class Keyring:
    """Named AES-256 keys and the one that encrypts new payloads."""

    keys: Mapping[str, bytes]
    active: str

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise ValueError(f"active codec key {self.active!r} is not among the keys")
        for key_id, key in self.keys.items():
            if not KEY_ID_PATTERN.match(key_id):
                raise ValueError(f"invalid codec key id {key_id!r}")
            if len(key) != KEY_BYTES:
                raise ValueError(f"codec key {key_id!r} must be {KEY_BYTES} bytes")

    @classmethod
    def development(cls) -> Keyring:
        return cls({DEV_KEY_ID: DEV_KEY_BYTES}, DEV_KEY_ID)

    @classmethod
    def from_config(cls, keys: Mapping[str, str], active: str = "") -> Keyring:
        """From ``{key_id: base64 key}``; ``active`` may be omitted when there is one key."""
        decoded = {key_id: decode_key(key_id, value) for key_id, value in keys.items()}
        if not decoded:
            raise ValueError("no codec keys configured")
        if not active:
            if len(decoded) != 1:
                raise ValueError("several codec keys: set codec_active_key_id")
            active = next(iter(decoded))
        return cls(decoded, active)

    @property
    def insecure(self) -> bool:
        """True when any key is the public development key."""
        return any(key == DEV_KEY_BYTES for key in self.keys.values())


def _aad(key_id: str) -> bytes:
    return SCHEME + b"|" + key_id.encode()


class EncryptionCodec(PayloadCodec):
    """zlib, then AES-256-GCM with a fresh random nonce per payload; key id in the metadata."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._keyring.active
        nonce = os.urandom(NONCE_BYTES)
        plain = zlib.compress(payload.SerializeToString(), 6)
        sealed = self._ciphers[key_id].encrypt(nonce, plain, _aad(key_id))
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: key_id.encode(), SCHEME_KEY: SCHEME},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload, max_size: int = MAX_DECODED_BYTES) -> Payload:
        """The original payload; payloads this codec did not encrypt pass through unchanged.
        ``TooLarge`` if it would decompress to more than ``max_size`` bytes."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        scheme = payload.metadata.get(SCHEME_KEY, SCHEME)
        if scheme != SCHEME:
            raise CodecError(f"unsupported encryption scheme {scheme!r}")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecError(f"payload encrypted with unknown key id {key_id!r}")
        data = payload.data
        if len(data) <= NONCE_BYTES:
            raise CodecError("encrypted payload too short")
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], _aad(key_id))
        except InvalidTag as exc:
            raise CodecError(f"payload does not authenticate under key {key_id!r}") from exc
        original = Payload()
        original.ParseFromString(_inflate(plain, max_size))
        return original

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]


def key_ids(payloads: Sequence[Payload]) -> set[str]:
    """Which keys encrypted these payloads (for audits and rotation checks)."""
    return {
        p.metadata[KEY_ID].decode()
        for p in payloads
        if p.metadata.get("encoding") == ENCODING and KEY_ID in p.metadata
    }
