"""HTTP hardening: security headers, a request body limit, and CORS for the codec endpoint.

Middleware order, outermost first: security headers (on every response, errors included: an
error nothing else handled is answered here, a 500 problem - or a 503 when Temporal is away -
so it carries them too; Starlette's own last-resort handler sits outside every middleware),
CORS for ``/codec`` (the Temporal Web UI's origin only; preflights answered before
authentication), the body limit (413 before anything reads a large body), NUL characters
refused (422), then authentication (``api/auth.py``). Each reads ``Settings`` from the
lifespan state at request time, since ``create_app`` may be given no settings.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import auth
from api.errors import PROBLEM_JSON, problem_response, unexpected, validation_problem
from api.temporal import is_unavailable, unavailable
from models.settings import Settings

DEFAULT_MAX_BODY = 1_048_576
DEFAULT_BODY_WAIT = 30.0
CODEC_PREFIX = "/codec"
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})

#: Every API response: nothing is framed, sniffed, cached, or leaks its URL as a referrer.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: /docs loads Swagger UI from this server (api/docs.py; no CDN, works offline); its inline
#: bootstrap scripts are allowed by hash, computed from the page itself.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def _settings(scope: Scope) -> Settings | None:
    found = scope.get("state", {}).get("settings")
    return found if isinstance(found, Settings) else None


def _docs_csp(body: bytes) -> str:
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(body)
    )
    return DOCS_CSP.format(hashes=hashes)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        docs = path in DOCS_PATHS
        settings = _settings(scope)
        production = settings is not None and settings.environment == "production"
        pending: Message | None = None

        def decorate(message: Message, csp: str) -> Message:
            headers = list(message.get("headers", []))
            names = {k.lower() for k, _ in headers}
            add = {
                b"x-content-type-options": b"nosniff",
                b"referrer-policy": b"no-referrer",
                b"x-frame-options": b"DENY",
                b"cross-origin-opener-policy": b"same-origin",
                b"cache-control": b"no-store",
                b"content-security-policy": csp.encode(),
            }
            if production:
                add[b"strict-transport-security"] = b"max-age=31536000; includeSubDomains"
            if dict(headers).get(b"content-type", b"").startswith(b"application/pdf"):
                del add[b"content-security-policy"]  # browsers' PDF viewers break under it
            headers += [(k, v) for k, v in add.items() if k not in names]
            return {**message, "headers": headers}

        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal pending, started
            if message["type"] == "http.response.start":
                started = True
                if docs:  # hold the start until the (small, single-part) page is seen
                    pending = message
                    return
                await send(decorate(message, API_CSP))
                return
            if pending is not None and message["type"] == "http.response.body":
                start, pending = pending, None
                await send(decorate(start, _docs_csp(message.get("body", b""))))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if started:  # too late for another answer: the server closes the connection
                raise
            if is_unavailable(exc):
                answer = problem_response(unavailable("The workflow service is unavailable."))
            else:
                answer = unexpected(exc, path)
            await answer(scope, receive, send_wrapper)


class BodyLimitMiddleware:
    """413 (problem+json) for bodies over ``max_body_bytes``, declared or streamed; 408 when
    the body does not arrive within ``body_read_timeout_seconds`` (a client that opens a
    request and trickles or withholds its body does not hold a worker for ever)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = _settings(scope)
        limit = settings.max_body_bytes if settings is not None else DEFAULT_MAX_BODY
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(scope, send, limit)
            return
        received = 0
        wait = settings.body_read_timeout_seconds if settings is not None else DEFAULT_BODY_WAIT
        complete = False

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete:  # e.g. a response listening for the client to go: not a body read
                return await receive()
            try:
                async with asyncio.timeout(wait):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"The request body did not arrive within {wait:g} seconds.",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _too_large_detail(limit))
            return message

        await self.app(scope, limited_receive, send)


#: A JSON string escape for U+0000 (preceded by an even number of backslashes: not "\\u0000").
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
NUL_DETAIL = "Text must not contain the NUL character (U+0000)."


class NulMiddleware:
    """422 (problem+json) for a NUL character (U+0000) in the path, query or JSON body.

    PostgreSQL cannot store NUL in text: refused here, every such input is a clear 422
    instead of a 500 wherever it would first reach the database.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if "\x00" in scope["path"]:
            await _send_nul_problem(scope, send, "path")
            return
        if b"%00" in query or b"\x00" in query:
            await _send_nul_problem(scope, send, "query")
            return
        body = b""  # every body here is JSON (FastAPI parses it as such even unlabelled)

        async def checked_receive() -> Message:
            nonlocal body
            message = await receive()
            if message["type"] == "http.request":
                body += message.get("body", b"")
                if not message.get("more_body", False) and _NUL_ESCAPE.search(body):
                    raise HTTPException(422, NUL_DETAIL)  # as problem+json (api/errors.py)
            return message

        await self.app(scope, checked_receive, send)


async def _send_nul_problem(scope: Scope, send: Send, field: str) -> None:
    problem = validation_problem([{"field": field, "message": NUL_DETAIL}])
    response = problem_response(problem)
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _too_large_detail(limit: int) -> str:
    return f"The request body is larger than {limit} bytes."


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Request too large",
            "status": 413,
            "detail": _too_large_detail(limit),
            "instance": scope["path"],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class CodecCORSMiddleware:
    """CORS for ``/codec/*`` only, from the Temporal Web UI's configured origins."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cors: dict[tuple[str, ...], ASGIApp] = {}

    def _for(self, origins: tuple[str, ...]) -> ASGIApp:
        cors = self._cors.get(origins)
        if cors is None:
            cors = CORSMiddleware(
                self.app,
                allow_origins=list(origins),
                allow_methods=["POST"],
                allow_headers=["Content-Type", "X-Namespace", "Authorization"],
                allow_credentials=True,
                max_age=600,
            )
            self._cors[origins] = cors
        return cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = _settings(scope)
        if (
            scope["type"] != "http"
            or settings is None
            or not str(scope["path"]).startswith(CODEC_PREFIX + "/")
        ):
            await self.app(scope, receive, send)
            return
        await self._for(settings.ui_origins)(scope, receive, send)


def install(app: FastAPI) -> None:
    """Authentication and hardening middleware, in the order described above."""
    auth.install(app)
    app.add_middleware(NulMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(CodecCORSMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
