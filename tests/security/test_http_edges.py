"""HTTP edges: a 500 carries the security headers, a 405 names every method the path takes,
and a request body that never arrives gets a 408 instead of holding the server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from api.keys import Scope, create_key
from api.main import create_app
from tests.conftest import Database, free_port, make_settings, serve_api

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


@pytest.fixture
async def admin_api(db: Database) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """The API (no Temporal needed) with one extra route that fails unexpectedly."""
    port = free_port()
    settings = make_settings(
        database_url=db.url,
        api_port=port,
        temporal_address="127.0.0.1:1",
        body_read_timeout_seconds=1.0,
    )
    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError("something nobody expected")

    app.add_api_route("/v1/boom", boom, methods=["GET"])
    key = await create_key(db.sessionmaker, name="ops", scopes=[Scope.ADMIN.value])
    async with serve_api(app, port) as base_url:
        yield base_url, {"Authorization": f"Bearer {key.token}"}


async def test_an_unexpected_error_is_a_500_problem_with_every_security_header_when_unhandled(
    admin_api: tuple[str, dict[str, str]],
) -> None:
    base_url, auth = admin_api
    async with httpx.AsyncClient(base_url=base_url, headers=auth) as http:
        response = await http.get("/v1/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "nobody expected" not in response.text
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert "default-src 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/referrals", {"GET", "POST"}),
        ("DELETE", "/v1/providers/kids", {"GET", "PATCH"}),
        ("POST", "/v1/mediators/some-id", {"DELETE", "GET", "PATCH"}),
    ],
)
async def test_a_405_lists_every_method_the_path_takes_when_the_method_is_wrong(
    admin_api: tuple[str, dict[str, str]], method: str, path: str, allowed: set[str]
) -> None:
    base_url, auth = admin_api
    async with httpx.AsyncClient(base_url=base_url, headers=auth) as http:
        response = await http.request(method, path)
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/problem+json")
    listed = {m.strip() for m in response.headers["allow"].split(",")}
    assert listed - {"HEAD"} == allowed


async def test_a_request_whose_body_never_arrives_gets_a_408_when_the_read_times_out(
    admin_api: tuple[str, dict[str, str]],
) -> None:
    base_url, auth = admin_api
    url = httpx.URL(base_url)
    assert url.port is not None
    reader, writer = await asyncio.open_connection(url.host, url.port)
    started = time.monotonic()
    try:
        head = (
            "POST /v1/timescales HTTP/1.1\r\n"
            f"Host: {url.host}:{url.port}\r\n"
            f"Authorization: {auth['Authorization']}\r\n"
            "Content-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n"
            '{"decision_letter_date": '
        )
        writer.write(head.encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), timeout=10)
    finally:
        writer.close()
    took = time.monotonic() - started
    status_line, _, rest = answer.decode(errors="replace").partition("\r\n")
    assert status_line.startswith("HTTP/1.1 408"), answer[:300]
    assert "application/problem+json" in rest
    assert took < 5
