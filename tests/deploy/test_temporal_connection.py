"""How the deployed processes reach Temporal: TLS/mTLS from PEM files (``SENDMED_TEMPORAL_TLS_*``)
and the SDK runtime's Prometheus endpoint (``SENDMED_WORKER_METRICS_ADDRESS``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError
from temporalio.client import TLSConfig

from tests.conftest import free_port, make_settings
from workflows.client import metrics_runtime, tls_config


def pem_pair(folder: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_no_tls_settings_means_a_plain_connection() -> None:
    assert tls_config(make_settings()) is False
    assert tls_config(make_settings(temporal_tls=True)) is True  # TLS with the system's CAs


def test_mtls_reads_the_client_certificate_key_and_ca(tmp_path: Path) -> None:
    cert, key = pem_pair(tmp_path, "sendmed-worker")
    ca, _ = pem_pair(tmp_path, "temporal-ca")
    settings = make_settings(
        temporal_tls_client_cert=cert,
        temporal_tls_client_key=key,
        temporal_tls_server_ca=ca,
        temporal_tls_server_name="temporal-frontend",
    )
    config = tls_config(settings)
    assert isinstance(config, TLSConfig)
    assert config.client_cert == cert.read_bytes()
    assert config.client_private_key == key.read_bytes()
    assert config.server_root_ca_cert == ca.read_bytes()
    assert config.domain == "temporal-frontend"


def test_a_client_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    cert, _ = pem_pair(tmp_path, "half")
    with pytest.raises(ValidationError, match="go together"):
        make_settings(temporal_tls_client_cert=cert)


def test_the_sdk_metrics_endpoint_is_off_unless_an_address_is_set() -> None:
    assert metrics_runtime(make_settings().worker_metrics_address) is None
    port = free_port()
    runtime = metrics_runtime(f"127.0.0.1:{port}")
    assert runtime is not None
    assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
