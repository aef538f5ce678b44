"""The payload codec: AES-256-GCM over zlib, key id in the metadata, rotatable keys."""

from __future__ import annotations

import base64
import json
import os

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from models.adapters.codec import (
    DEV_KEY_ID,
    ENCODING,
    KEY_ID,
    CodecError,
    EncryptionCodec,
    Keyring,
    decode_key,
    generate_key,
    key_ids,
)
from tests.conftest import make_settings
from workflows.client import data_converter

SECRET = {"child": {"name": "Ada Testchild-Quintero", "date_of_birth": "2015-03-09"}}


def plain(value: object = SECRET) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def ring(*ids: str, active: str | None = None) -> Keyring:
    return Keyring({i: os.urandom(32) for i in ids}, active or ids[0])


async def test_payload_is_encrypted_with_the_active_key_and_named_by_its_id() -> None:
    codec = EncryptionCodec(ring("k1"))
    (encoded,) = await codec.encode([plain()])
    assert encoded.metadata["encoding"] == ENCODING
    assert encoded.metadata[KEY_ID] == b"k1"
    assert b"Ada" not in encoded.SerializeToString()
    assert b"2015-03-09" not in encoded.SerializeToString()
    (decoded,) = await codec.decode([encoded])
    assert decoded == plain()


async def test_large_payloads_are_compressed_before_encryption() -> None:
    big = plain({"history": ["the same referral, projected again"] * 500})
    (encoded,) = await EncryptionCodec(ring("k1")).encode([big])
    assert len(encoded.data) < len(big.data) / 5


async def test_each_encryption_uses_a_fresh_nonce() -> None:
    codec = EncryptionCodec(ring("k1"))
    first, second = await codec.encode([plain(), plain()])
    assert first.data != second.data


async def test_rotated_keyring_reads_old_payloads_and_writes_with_the_new_key() -> None:
    old = ring("2025")
    (written_before,) = await EncryptionCodec(old).encode([plain()])
    rotated = Keyring({**old.keys, "2026": os.urandom(32)}, "2026")
    codec = EncryptionCodec(rotated)
    assert await codec.decode([written_before]) == [plain()]
    (written_after,) = await codec.encode([plain()])
    assert key_ids([written_before, written_after]) == {"2025", "2026"}
    with pytest.raises(CodecError, match="unknown key id"):
        await EncryptionCodec(old).decode([written_after])


async def test_tampered_or_relabelled_payloads_are_refused() -> None:
    keyring = ring("a", "b")
    codec = EncryptionCodec(keyring)
    (encoded,) = await codec.encode([plain()])
    flipped = Payload()
    flipped.CopyFrom(encoded)
    flipped.data = encoded.data[:-1] + bytes([encoded.data[-1] ^ 1])
    with pytest.raises(CodecError):
        codec.decrypt(flipped)
    relabelled = Payload()
    relabelled.CopyFrom(encoded)
    relabelled.metadata[KEY_ID] = b"b"
    with pytest.raises(CodecError):
        codec.decrypt(relabelled)


async def test_payloads_it_did_not_encrypt_pass_through() -> None:
    codec = EncryptionCodec(ring("k1"))
    assert await codec.decode([plain()]) == [plain()]


def test_keys_are_read_from_base64_and_checked() -> None:
    key = generate_key()
    assert len(decode_key("k", key)) == 32
    urlsafe = base64.urlsafe_b64encode(base64.b64decode(key)).decode().rstrip("=")
    assert decode_key("k", urlsafe) == base64.b64decode(key)
    with pytest.raises(ValueError, match="32 bytes"):
        decode_key("k", base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="not base64"):
        decode_key("k", "not base64 at all!")
    with pytest.raises(ValueError, match="key id"):
        decode_key("bad id", key)
    with pytest.raises(ValueError, match="codec_active_key_id"):
        Keyring.from_config({"a": key, "b": generate_key()})
    with pytest.raises(ValueError, match="not among"):
        Keyring.from_config({"a": key}, "b")


def test_settings_give_the_dev_key_only_outside_production() -> None:
    assert make_settings().codec_keyring().active == DEV_KEY_ID
    assert make_settings().codec_keyring().insecure
    configured = make_settings(
        codec_keys={"2025": generate_key(), "2026": generate_key()}, codec_active_key_id="2026"
    )
    keyring = configured.codec_keyring()
    assert keyring.active == "2026"
    assert set(keyring.keys) == {"2025", "2026"}
    assert not keyring.insecure


async def test_data_converter_encrypts_values_and_failure_messages() -> None:
    converter = data_converter(EncryptionCodec(ring("k1")))
    (payload,) = await converter.encode([SECRET])
    assert b"Ada" not in payload.SerializeToString()
    assert await converter.decode([payload], [dict]) == [SECRET]
    failure = Failure()
    await converter.encode_failure(ApplicationError("Ada Testchild-Quintero is 11"), failure)
    assert b"Ada" not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert str(decoded) == "Ada Testchild-Quintero is 11"
