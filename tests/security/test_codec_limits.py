"""``/codec/decode`` never inflates a small request into a huge answer."""

from __future__ import annotations

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from models.adapters.codec import TooLarge
from tests.conftest import Stack, make_settings

BOMB_BYTES = 64 * 1024 * 1024  # 64 MiB of zeros: about 64 KB once compressed


def bomb() -> Payload:
    codec = make_settings().payload_codec()
    return codec.encrypt(Payload(metadata={"encoding": b"binary/plain"}, data=bytes(BOMB_BYTES)))


def test_a_payload_that_decompresses_past_the_limit_is_refused_when_decrypted() -> None:
    codec = make_settings().payload_codec()
    sealed = bomb()
    assert len(sealed.data) < 200_000
    with pytest.raises(TooLarge):
        codec.decrypt(sealed, max_size=1024 * 1024)
    small = codec.encrypt(Payload(metadata={"encoding": b"binary/plain"}, data=b"x" * 1000))
    assert codec.decrypt(small, max_size=2000).data == b"x" * 1000


async def test_codec_decode_answers_413_when_the_decoded_payloads_would_be_too_large(
    stack: Stack,
) -> None:
    body = {"payloads": [json_format.MessageToDict(bomb())]}
    response = await stack.http.post("/codec/decode", json=body)
    assert response.status_code == 413, response.status_code
    assert response.headers["content-type"].startswith("application/problem+json")
    assert len(response.content) < 10_000
    assert [e["field"] for e in response.json()["errors"]] == ["body.payloads"]
