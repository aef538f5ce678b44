"""The one way to reach Temporal: every client uses the pydantic data converter.

With a payload codec (``models.adapters.codec.EncryptionCodec``, built from settings by the
worker and the API) every payload and every failure message is encrypted before it reaches
Temporal.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig


class TLSSettings(Protocol):
    """The ``temporal_tls*`` settings (``models.settings.Settings`` has them): this module
    reads them without importing the settings, so it stays as light as the workflows."""

    @property
    def temporal_tls(self) -> bool: ...
    @property
    def temporal_tls_client_cert(self) -> Path | None: ...
    @property
    def temporal_tls_client_key(self) -> Path | None: ...
    @property
    def temporal_tls_server_ca(self) -> Path | None: ...
    @property
    def temporal_tls_server_name(self) -> str: ...


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """Pydantic payloads; with a codec, payloads and failure messages/stack traces encoded."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def tls_config(settings: TLSSettings) -> TLSConfig | bool:
    """TLS for the frontend from the ``temporal_tls*`` settings (PEM files): False (plain),
    True (system CAs) or a ``TLSConfig`` (a private CA, a server name and/or mTLS)."""
    client_cert = settings.temporal_tls_client_cert
    client_key = settings.temporal_tls_client_key
    server_ca = settings.temporal_tls_server_ca
    server_name = settings.temporal_tls_server_name
    if client_cert is None and client_key is None and server_ca is None and not server_name:
        return settings.temporal_tls
    return TLSConfig(
        client_cert=client_cert.read_bytes() if client_cert is not None else None,
        client_private_key=client_key.read_bytes() if client_key is not None else None,
        server_root_ca_cert=server_ca.read_bytes() if server_ca is not None else None,
        domain=server_name or None,
    )


def metrics_runtime(bind_address: str) -> Runtime | None:
    """A Temporal runtime serving the SDK's metrics for Prometheus at ``bind_address``
    (``host:port``, path ``/metrics``; durations in seconds); None (the default runtime)
    when empty."""
    if not bind_address:
        return None
    prometheus = PrometheusConfig(bind_address=bind_address, durations_as_seconds=True)
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


async def connect(
    target: str,
    namespace: str = "default",
    *,
    lazy: bool = False,
    converter: DataConverter | None = None,
    tls: TLSConfig | bool = False,
    runtime: Runtime | None = None,
) -> Client:
    return await Client.connect(
        target,
        namespace=namespace,
        data_converter=converter if converter is not None else pydantic_data_converter,
        lazy=lazy,
        tls=tls,
        runtime=runtime,
    )
