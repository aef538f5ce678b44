"""Authentication and authorisation for every route, in one place.

Each route's method and path template maps to the scope a key needs (``ROUTE_SCOPES``), or to
``PUBLIC``. :class:`AuthMiddleware` resolves the route of each request *before* the app reads
its body, checks ``Authorization: Bearer <api key>`` (``api/keys.py``) and the scope, and
answers 401/403 itself as problem+json (one message for a missing, malformed, unknown,
wrong or revoked key). A route with no mapping, an unknown path or a method a route does not
take is refused to everyone but ``admin`` keys (fail closed); ``tests/security`` fails while
any route lacks a mapping.

A key that verified is trusted for ``api_key_cache_seconds`` (default 5 s) by this process
(:class:`VerifiedKeys`): a client sending dozens of requests a second costs one key lookup
every few seconds instead of one per request. Only successes are kept, under the SHA-256 of
the whole token, so a wrong, unknown or revoked key is looked up every time; a revocation
takes effect within those seconds (0 checks every request).

For the routes, the middleware sets ``request.state.client_id`` (the key's id: the audit
actor and the owner of idempotency records; a client name need not be unique, so it is never
an identity) and ``request.state.principal``. A key limited to councils never uses the
council-wide scopes (``api.keys.COUNCIL_WIDE_SCOPES``), even if it was stored with them;
:func:`allowed_local_authorities` and :func:`require_local_authority` limit a client to its
own councils' referrals. On routes with a ``{referral_id}``, that limit is enforced here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import PROBLEM_JSON, Problem
from api.keys import COUNCIL_WIDE_REASON, Principal, authenticate
from api.keys import Scope as KeyScope
from models.settings import Settings
from models.store.tables import ReferralRow

log = logging.getLogger(__name__)

PUBLIC: Final = "public"
REALM = 'Bearer realm="send-referrals"'

READ = KeyScope.REFERRALS_READ.value
WRITE = KeyScope.REFERRALS_WRITE.value
REPORTS = KeyScope.REPORTS_READ.value
REGISTRIES = KeyScope.REGISTRIES_WRITE.value
WEBHOOKS = KeyScope.WEBHOOKS_MANAGE.value
METRICS = KeyScope.METRICS_READ.value
CODEC = KeyScope.CODEC.value
ADMIN = KeyScope.ADMIN.value

#: (method, path template with every ``{param}`` written ``{}``) -> required scope or PUBLIC.
ROUTE_SCOPES: Final[dict[tuple[str, str], str]] = {
    # public: operations probes, document verification, the API's own documentation
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/v1/documents/{}/verify"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/docs/assets/swagger-ui-bundle.js"): PUBLIC,
    ("GET", "/docs/assets/swagger-ui.css"): PUBLIC,
    ("GET", "/docs/assets/favicon.png"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/docs/assets/redoc.standalone.js"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    # the link pages: the link's token is the credential (api/routes/pages.py)
    ("GET", "/respond/assets/{}"): PUBLIC,
    ("GET", "/respond/{}"): PUBLIC,
    ("GET", "/respond/{}/{}"): PUBLIC,
    ("POST", "/respond/{}"): PUBLIC,
    ("POST", "/respond/{}/{}"): PUBLIC,
    # referrals
    ("POST", "/v1/referrals"): WRITE,
    ("POST", "/v1/referrals/{}/{command}"): WRITE,  # every command (see _COMMAND)
    ("GET", "/v1/referrals"): READ,
    ("GET", "/v1/referrals/{}"): READ,
    ("GET", "/v1/referrals/{}/events"): READ,
    ("GET", "/v1/referrals/{}/documents"): READ,
    ("GET", "/v1/referrals/{}/deliveries"): READ,
    ("GET", "/v1/referrals/{}/export"): ADMIN,
    ("GET", "/v1/documents/{}"): READ,
    ("GET", "/v1/documents/{}/calendar.ics"): READ,
    ("POST", "/v1/timescales"): READ,
    # registries: read by whoever books meetings, changed by those who manage them
    ("GET", "/v1/mediators"): READ,
    ("GET", "/v1/mediators/{}"): READ,
    ("POST", "/v1/mediators"): REGISTRIES,
    ("PATCH", "/v1/mediators/{}"): REGISTRIES,
    ("DELETE", "/v1/mediators/{}"): REGISTRIES,
    ("GET", "/v1/venues"): READ,
    ("GET", "/v1/venues/{}"): READ,
    ("POST", "/v1/venues"): REGISTRIES,
    ("PATCH", "/v1/venues/{}"): REGISTRIES,
    ("DELETE", "/v1/venues/{}"): REGISTRIES,
    ("GET", "/v1/providers"): READ,
    ("GET", "/v1/providers/{}"): READ,
    ("POST", "/v1/providers"): REGISTRIES,
    ("PATCH", "/v1/providers/{}"): REGISTRIES,
    ("GET", "/v1/mediators/{}/changes"): READ,
    ("GET", "/v1/venues/{}/changes"): READ,
    ("GET", "/v1/providers/{}/changes"): READ,
    ("GET", "/v1/local-authorities/{}/changes"): READ,
    ("GET", "/v1/local-authorities"): READ,
    ("GET", "/v1/local-authorities/{}"): READ,
    ("POST", "/v1/local-authorities"): ADMIN,
    ("PATCH", "/v1/local-authorities/{}"): ADMIN,
    # reports, webhooks, operations
    ("GET", "/v1/reports/summary"): REPORTS,
    ("GET", "/v1/reports/summary.csv"): REPORTS,
    ("POST", "/v1/webhook-subscriptions"): WEBHOOKS,
    ("GET", "/v1/webhook-subscriptions"): WEBHOOKS,
    ("GET", "/v1/webhook-subscriptions/{}"): WEBHOOKS,
    ("DELETE", "/v1/webhook-subscriptions/{}"): WEBHOOKS,
    ("GET", "/v1/webhook-subscriptions/{}/deliveries"): WEBHOOKS,
    ("GET", "/metrics"): METRICS,
    ("POST", "/codec/encode"): CODEC,
    ("POST", "/codec/decode"): CODEC,
    # the development Web UI: its per-run path token is its credential (see _development_ui)
    ("POST", "/codec/{}/encode"): CODEC,
    ("POST", "/codec/{}/decode"): CODEC,
}

_PARAM = re.compile(r"\{[^}]*\}")
_COMMAND = re.compile(r"^/v1/referrals/\{\}/[a-z]+(?:-[a-z]+)*$")


def normalise(path_template: str) -> str:
    return _PARAM.sub("{}", path_template)


def required_scope(method: str, path_template: str) -> str | None:
    """The scope a route needs, ``PUBLIC``, or None when the route has no mapping."""
    method = "GET" if method == "HEAD" else method
    path = normalise(path_template)
    found = ROUTE_SCOPES.get((method, path))
    if found is None and method == "POST" and _COMMAND.match(path):
        found = ROUTE_SCOPES[("POST", "/v1/referrals/{}/{command}")]
    return found


# --------------------------------------------------------------------------- route table


@dataclass(frozen=True)
class RouteEntry:
    methods: frozenset[str]
    template: str
    regex: re.Pattern[str]


def iter_routes(app: FastAPI) -> Iterator[tuple[frozenset[str], str]]:
    """Every HTTP route of the app: its methods and full path template (prefixes included)."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):  # an included router (FastAPI >= 0.16x)
            for context in contexts():
                yield frozenset(context.methods or ()), str(context.path_format)
            continue
        methods = getattr(route, "methods", None)
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        if methods and path:
            yield frozenset(methods), str(path)


def route_table(app: FastAPI) -> list[RouteEntry]:
    return [
        RouteEntry(methods, template, compile_path(template)[0])
        for methods, template in iter_routes(app)
    ]


def unmapped_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Routes no entry of ``ROUTE_SCOPES`` covers (the security tests keep this empty)."""
    return sorted(
        (method, template)
        for methods, template in iter_routes(app)
        for method in methods
        if method != "HEAD" and required_scope(method, template) is None
    )


def route_path(scope: Scope) -> str:
    """The path the router matches: without the ``root_path`` (as Starlette does)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (path == root or path[len(root)] == "/"):
        return path[len(root) :]
    return path


def _resolve(table: list[RouteEntry], method: str, path: str) -> tuple[str, dict[str, str]] | None:
    wanted = "GET" if method == "HEAD" else method
    for entry in table:
        if wanted in entry.methods or method in entry.methods:
            match = entry.regex.match(path)
            if match:
                return entry.template, match.groupdict()
    return None


# --------------------------------------------------------------------------- helpers


def principal_of(request: Request) -> Principal | None:
    found = getattr(request.state, "principal", None)
    return found if isinstance(found, Principal) else None


def allowed_local_authorities(request: Request) -> frozenset[str] | None:
    """The councils the caller may act for; None = every council.

    Without an authenticated caller (a public route) nothing is allowed: fail closed.
    """
    principal = principal_of(request)
    if principal is None:
        return frozenset()
    return principal.local_authorities


def require_local_authority(request: Request, code: str) -> None:
    """403 (problem+json) unless the caller may act for council ``code``."""
    allowed = allowed_local_authorities(request)
    if allowed is not None and code not in allowed:
        raise Problem(403, "Forbidden", "This API key may not act for this local authority.")


# --------------------------------------------------------------------------- middleware


class VerifiedKeys:
    """Principals of recently verified bearer tokens, each kept for ``ttl`` seconds.

    Keyed by the SHA-256 of the whole token: only the exact token that verified matches. At
    most ``max_entries`` are kept (expired ones are dropped first, then everything).
    """

    def __init__(
        self,
        ttl: float,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[bytes, tuple[Principal, float]] = {}

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> Principal | None:
        if self.ttl <= 0:
            return None
        key = self._key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        principal, expires = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        return principal

    def put(self, token: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        now = self._clock()
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[self._key(token)] = (principal, now + self.ttl)


DEFAULT_KEY_CACHE_SECONDS = 5.0

UNAUTHENTICATED = "A valid API key is required: send 'Authorization: Bearer <api key>'."
FORBIDDEN = "This API key is not allowed to do this."


class AuthMiddleware:
    """Pure ASGI: authenticate and authorise before the route runs or reads the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._table: list[RouteEntry] | None = None
        self._verified: VerifiedKeys | None = None

    def _keys(self, state: dict[str, Any]) -> VerifiedKeys:
        if self._verified is None:
            settings = state.get("settings")
            ttl = (
                settings.api_key_cache_seconds
                if isinstance(settings, Settings)
                else DEFAULT_KEY_CACHE_SECONDS
            )
            self._verified = VerifiedKeys(ttl)
        return self._verified

    def _routes(self, scope: Scope) -> list[RouteEntry]:
        if self._table is None:
            self._table = route_table(scope["app"])
        return self._table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        resolved = _resolve(self._routes(scope), method, route_path(scope))
        needed = required_scope(method, resolved[0]) if resolved else None
        if resolved is not None and needed == PUBLIC:
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        ui_token = resolved[1].get("ui_token") if resolved is not None else None
        try:
            principal = await self._authenticate(state, headers, needed, ui_token)
        except Exception:
            log.exception("authentication failed: key store unavailable")
            await _send_problem(
                scope, send, 503, "Temporarily unavailable", "Try again shortly.", {}
            )
            return
        if principal is None:
            bearer = headers.get("authorization", "")
            challenge = REALM if not bearer else f'{REALM}, error="invalid_token"'
            await _send_problem(
                scope,
                send,
                401,
                "Unauthorised",
                UNAUTHENTICATED,
                {"WWW-Authenticate": challenge},
            )
            return
        if needed is None:  # an unknown path or method (404/405), or a route nobody mapped
            needed = ADMIN  # (tests/security catches those): fail closed, admin only
        if not principal.allows(needed):
            detail = FORBIDDEN
            if principal.voided(needed):
                detail = f"{FORBIDDEN} This API key is limited to councils, and " + (
                    COUNCIL_WIDE_REASON.format(scopes=f"'{needed}'")
                )
            await _send_problem(
                scope,
                send,
                403,
                "Forbidden",
                detail,
                {"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{needed}"'},
            )
            return
        state["principal"] = principal
        state["client_id"] = principal.key_id  # the identity: names need not be unique
        if resolved is not None and principal.local_authorities is not None:
            referral_id = resolved[1].get("referral_id")
            if referral_id and not await self._referral_allowed(state, principal, referral_id):
                await _send_problem(
                    scope,
                    send,
                    403,
                    "Forbidden",
                    "This API key may not act for this local authority.",
                    {},
                )
                return
        await self.app(scope, receive, send)

    async def _authenticate(
        self,
        state: dict[str, Any],
        headers: dict[str, str],
        needed: str | None,
        ui_token: str | None = None,
    ) -> Principal | None:
        value = headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if value and scheme.lower() == "bearer" and token.strip():
            token = token.strip()
            verified = self._keys(state)
            principal = verified.get(token)
            if principal is not None:
                return principal
            maker: async_sessionmaker[AsyncSession] = state["sessionmaker"]
            principal = await authenticate(maker, token)
            if principal is not None:
                verified.put(token, principal)
            return principal
        if not value and needed == CODEC and ui_token is not None:
            return _development_ui(state.get("settings"), ui_token)
        return None

    async def _referral_allowed(
        self, state: dict[str, Any], principal: Principal, referral_id: str
    ) -> bool:
        maker: async_sessionmaker[AsyncSession] = state["sessionmaker"]
        async with maker() as session:
            row = await session.get(ReferralRow, referral_id)
        allowed = principal.local_authorities
        return row is None or allowed is None or row.local_authority in allowed


DEV_UI = Principal(
    key_id="-", name="temporal-ui (development)", scopes=frozenset({CODEC}), local_authorities=None
)


def _development_ui(settings: Any, token: str) -> Principal | None:
    """Development only: the dev server's Web UI (no login) calls ``/codec/<token>/…`` with
    the token ``make run`` made for this run and gave only to it (``--ui-codec-endpoint``)
    and to the API. An ``Origin`` header proves nothing (any client can send one)."""
    expected = settings.ui_codec_token if isinstance(settings, Settings) else ""
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return DEV_UI
    return None


async def _send_problem(
    scope: Scope, send: Send, status: int, title: str, detail: str, headers: dict[str, str]
) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope["path"],
        }
    ).encode()
    raw = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- OpenAPI


def _document_security(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["apiKey"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`srk_…`) created with `python -m api.keys create`.",
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            needed = required_scope(method.upper(), path)
            if needed == PUBLIC:
                operation["security"] = []
                continue
            operation["security"] = [{"apiKey": []}]
            note = f"**Scope:** `{needed or ADMIN}` (or `admin`)."
            described = operation.get("description", "")
            operation["description"] = f"{described}\n\n{note}".strip()
            operation.setdefault("responses", {}).setdefault(
                "401", {"description": "No valid API key (problem+json)."}
            )
            operation["responses"].setdefault(
                "403", {"description": "The key lacks the scope or the council (problem+json)."}
            )


def install(app: FastAPI) -> None:
    """Add the middleware and document the bearer scheme and scopes in the OpenAPI schema."""
    app.add_middleware(AuthMiddleware)
    original = app.openapi
    documented: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = original()
        if not documented or documented[0] is not schema:
            _document_security(schema)
            documented[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
