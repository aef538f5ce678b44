"""``POST /codec/encode`` and ``/codec/decode``: Temporal's remote codec protocol for the Web UI.

The Temporal Web UI (and ``temporal`` CLI with ``--codec-endpoint``) sends
``{"payloads": [{"metadata": {...base64...}, "data": "<base64>"}]}`` (the protobuf JSON of
``temporal.api.common.v1.Payloads``) with an ``X-Namespace`` header, and shows what comes
back. Needs scope ``codec``. In development, the dev server's UI (no login) calls
``/codec/<per-run token>/…`` instead: ``make run`` makes a fresh token each run and gives it
to the UI (``--ui-codec-endpoint``) and the API (``SENDMED_CODEC_UI_TOKEN``) only; see
``api/auth.py`` and the README.

Decoding is bounded: a payload that would decompress to more than 4 MiB, or an answer over
16 MiB, is a 413 (an 87 KB request once inflated to 89 MB).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field
from temporalio.api.common.v1 import Payload, Payloads

from api.deps import SettingsDep, codec_of
from api.errors import Problem, validation_problem
from models.adapters.codec import CodecError, TooLarge

log = logging.getLogger(__name__)

router = APIRouter(prefix="/codec", tags=["operations"])

Base64 = Annotated[str, Field(max_length=4_000_000, pattern=r"^[A-Za-z0-9+/_-]*={0,2}$")]


class PayloadJSON(BaseModel):
    """One ``Payload`` in protobuf JSON: metadata values and data are base64."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    metadata: dict[str, Base64] = Field(default_factory=dict)
    data: Base64 = ""
    external_payloads: list[dict[str, Any]] | None = Field(default=None, alias="externalPayloads")


class CodecBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    payloads: list[PayloadJSON] = Field(default_factory=list, max_length=10_000)


def _check_namespace(settings: Any, namespace: str | None) -> None:
    if namespace is not None and namespace != settings.temporal_namespace:
        raise Problem(403, "Forbidden", "This codec does not serve that namespace.")


def _to_proto(body: CodecBody) -> list[Payload]:
    message = {"payloads": [p.model_dump(by_alias=True, exclude_none=True) for p in body.payloads]}
    try:
        return list(json_format.ParseDict(message, Payloads()).payloads)
    except json_format.ParseError as exc:
        error = {"field": "body.payloads", "message": "not Payloads JSON"}
        raise validation_problem([error]) from exc


def _to_json(payloads: list[Payload]) -> JSONResponse:
    message = json_format.MessageToDict(Payloads(payloads=payloads))
    return JSONResponse({"payloads": message.get("payloads", [])})


NamespaceHeader = Annotated[
    str | None,
    Header(alias="X-Namespace", max_length=255, description="The payloads' namespace."),
]
DESCRIPTION = (
    "Temporal's remote codec protocol (for the Web UI and the `temporal` CLI). Only the "
    "service's own namespace is served (`X-Namespace`)."
)


MAX_PAYLOAD_BYTES = 4 * 1024 * 1024  # one decoded payload (Temporal's own limit is 2 MB)
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # every decoded payload of one request together


def _too_large(detail: str) -> Problem:
    return Problem(
        413,
        "Request too large",
        detail,
        errors=[{"field": "body.payloads", "message": detail}],
    )


@router.post(
    "/encode",
    summary="Encrypt payloads (remote codec)",
    description=DESCRIPTION,
    response_class=JSONResponse,
)
async def encode(
    request: Request,
    settings: SettingsDep,
    body: Annotated[CodecBody, Body()],
    namespace: NamespaceHeader = None,
) -> JSONResponse:
    _check_namespace(settings, namespace)
    return _to_json(await codec_of(request).encode(_to_proto(body)))


@router.post(
    "/decode",
    summary="Decrypt payloads (remote codec)",
    description=DESCRIPTION + " A payload that cannot be decrypted is returned unchanged; one "
    "that would decompress to more than 4 MiB (16 MiB for all of them) is a 413.",
    response_class=JSONResponse,
    responses={413: {"description": "The decoded payloads would be too large."}},
)
async def decode(
    request: Request,
    settings: SettingsDep,
    body: Annotated[CodecBody, Body()],
    namespace: NamespaceHeader = None,
) -> JSONResponse:
    _check_namespace(settings, namespace)
    codec = codec_of(request)
    decoded: list[Payload] = []
    budget = MAX_ANSWER_BYTES
    for payload in _to_proto(body):
        try:
            plain = codec.decrypt(payload, max_size=max(0, min(MAX_PAYLOAD_BYTES, budget)))
        except TooLarge as exc:
            raise _too_large(
                f"the decoded payloads would exceed {MAX_PAYLOAD_BYTES} bytes each or "
                f"{MAX_ANSWER_BYTES} bytes together"
            ) from exc
        except CodecError as exc:
            log.warning("codec: payload left encrypted: %s", exc)
            plain = payload
        budget -= plain.ByteSize()
        decoded.append(plain)
    return _to_json(decoded)


# The development Web UI's own endpoints, the same two: the per-run token in the path is its
# credential (checked in api/auth.py). Not in the OpenAPI document: only the dev UI calls them.
for _name, _endpoint in (("encode", encode), ("decode", decode)):
    router.add_api_route(
        f"/{{ui_token}}/{_name}",
        _endpoint,
        methods=["POST"],
        include_in_schema=False,
        response_class=JSONResponse,
        name=f"ui_{_name}",
    )
