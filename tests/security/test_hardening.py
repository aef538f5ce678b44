"""Body limits, strict input models, security headers, CORS for the codec, refused secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from api.main import create_app
from models.adapters.codec import DEV_KEY_BYTES, generate_key
from models.settings import Environment, Settings
from tests.conftest import Stack, free_port, make_settings, serve_api
from workflows.client import connect

UI = "http://127.0.0.1:8233"


async def test_a_body_over_the_limit_is_a_413_problem(stack: Stack) -> None:
    big = b'{"x": "' + b"a" * (stack.settings.max_body_bytes + 1) + b'"}'
    response = await stack.http.post(
        "/v1/referrals", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["title"] == "Request too large"


async def test_a_streamed_body_over_the_limit_is_a_413_problem(stack: Stack) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"x": "'
        for _ in range(stack.settings.max_body_bytes // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    response = await stack.http.post(
        "/v1/timescales", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")


def _strict_violations(schema: dict[str, Any]) -> list[str]:
    components = schema["components"]["schemas"]
    seen: set[str] = set()
    bad: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in seen:
                    seen.add(name)
                    walk(components[name], name)
                return
            if (
                node.get("type") == "object"
                and "properties" in node
                and node.get("additionalProperties") is not False
            ):
                bad.append(where)
            for value in node.values():
                walk(value, where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    for path, item in schema["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body:
                walk(body, f"{method.upper()} {path}")
    return sorted(set(bad))


async def test_every_request_body_model_forbids_unknown_fields(stack: Stack) -> None:
    schema = (await stack.http.get("/openapi.json")).json()
    assert _strict_violations(schema) == []


async def test_unknown_fields_are_rejected(stack: Stack) -> None:
    response = await stack.http.post(
        "/v1/timescales", json={"decision_letter_date": "2026-01-14", "surprise": 1}
    )
    assert response.status_code == 422


async def test_security_headers_on_api_responses(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as anonymous:
        refused = await anonymous.get("/v1/referrals")
    assert refused.status_code == 401
    for response in (
        await stack.http.get("/v1/referrals"),
        await stack.http.get("/healthz"),
        refused,
    ):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "default-src 'none'" in headers["content-security-policy"]


async def test_docs_page_csp_lets_swagger_ui_load_and_nothing_else(stack: Stack) -> None:
    response = await stack.http.get("/docs")
    csp = response.headers["content-security-policy"]
    assert "http" not in csp  # no third-party origin: Swagger UI is served from here
    assert "script-src 'self'" in csp
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs/assets/{asset}" in response.text
        served = await stack.http.get(f"/docs/assets/{asset}", headers={"Authorization": ""})
        assert served.status_code == 200
        assert len(served.content) > 100_000
    assert "'sha256-" in csp  # the inline bootstrap script, by hash
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "frame-ancestors 'none'" in csp


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"codec_keys": {}}, "codec_keys must be set"),
        ({"codec_keys": {"k": "placeholder"}}, "codec key"),
        ({"codec_keys": {"k": __import__("base64").b64encode(DEV_KEY_BYTES).decode()}}, "public"),
        ({"codec_keys": {"k": "G"}, "codec_active_key_id": "k"}, "codec key"),
        ({"codec_ui_token": "t" * 43}, "development only"),
        ({"smtp_password": "changeme"}, "placeholder"),
        ({"public_base_url": ""}, "public_base_url"),
        ({"public_base_url": "http://send-referrals.example.org"}, "public_base_url"),
        ({"public_base_url": "https://localhost:8000"}, "public_base_url"),
        ({"public_base_url": "https://127.0.0.1"}, "public_base_url"),
        ({"public_base_url": "https://[::1]:8000"}, "public_base_url"),
    ],
)
def test_production_refuses_placeholder_and_development_secrets(
    values: dict[str, Any], message: str
) -> None:
    base: dict[str, Any] = {
        "environment": "production",
        "smtp_host": "smtp.example.org",
        "codec_keys": {"2026": generate_key()},
        "public_base_url": "https://send-referrals.example.org",
    }
    with pytest.raises(ValidationError, match=message) as error:
        Settings(_env_file=None, **{**base, **values})
    assert "input_value" not in str(error.value)  # secrets never echoed


def test_production_accepts_real_keys_and_never_a_ui_codec_token() -> None:
    settings = Settings(
        _env_file=None,
        environment="production",
        smtp_host="smtp.example.org",
        public_base_url="https://send-referrals.example.org",
        codec_keys={"2025": SecretStr(generate_key()), "2026": SecretStr(generate_key())},
        codec_active_key_id="2026",
    )
    assert settings.ui_codec_token == ""
    token = "t" * 43
    assert (
        Settings(_env_file=None, codec_ui_token=SecretStr(token)).ui_codec_token == token
    )  # development
    assert make_settings(codec_ui_token=token).ui_codec_token == ""  # test


UI_TOKEN = "per-run-token-" + "x" * 32


async def _codec_app(environment: Environment, tmp_path: Any) -> tuple[Any, str]:
    settings = Settings(
        _env_file=None,
        environment=environment,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db",
        codec_ui_token=SecretStr(UI_TOKEN),
    )
    from models import migrate

    migrate.upgrade(settings.database_target)
    temporal = await connect(f"127.0.0.1:{free_port()}", lazy=True)
    return create_app(settings, temporal=temporal), UI


@pytest.mark.parametrize("environment", ["development", "test"])
async def test_the_dev_ui_reaches_the_codec_only_through_its_per_run_token_when_sending_no_key(
    environment: Environment, tmp_path: Any
) -> None:
    app, origin = await _codec_app(environment, tmp_path)
    payloads = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "e30="}]}
    ui_headers = {"Origin": origin, "X-Namespace": "default"}
    async with serve_api(app, free_port()) as base, httpx.AsyncClient(base_url=base) as http:
        preflight = await http.options(
            f"/codec/{UI_TOKEN}/decode",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        other = await http.options(
            "/codec/decode",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers
        # The UI's Origin alone (which curl can send) opens nothing.
        origin_only = await http.post("/codec/decode", json=payloads, headers=ui_headers)
        with_token = await http.post(f"/codec/{UI_TOKEN}/decode", json=payloads, headers=ui_headers)
        wrong_token = await http.post(
            f"/codec/{UI_TOKEN[:-1]}y/decode", json=payloads, headers=ui_headers
        )
        no_cors_on_api = await http.options(
            "/v1/referrals", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
        )
    assert origin_only.status_code == 401
    assert wrong_token.status_code == 401
    assert "access-control-allow-origin" not in no_cors_on_api.headers
    if environment == "development":
        assert with_token.status_code == 200, with_token.text
        assert with_token.json() == payloads
        assert with_token.headers["access-control-allow-origin"] == origin
    else:  # the token is a development-only credential
        assert with_token.status_code == 401
