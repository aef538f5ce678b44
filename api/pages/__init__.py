"""The link pages' rendering: templates, assets, headers and form tokens (no routes here).

Pages use the GOV.UK Design System's markup (``govuk-frontend-jinja`` macros) and styles
(``govuk-frontend`` from npm, compiled by ``make`` into ``static/``), configured for a
service that is not on GOV.UK: the provider's name heads each page, never the crown, the
GOV.UK logotype or the GDS Transport font. Every page works without JavaScript (it loads
none) and carries a CSP that allows only this service's own stylesheet.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader
from starlette.responses import HTMLResponse

from models.adapters.codec import Keyring

HERE = Path(__file__).parent
STATIC = HERE / "static"
ASSETS = {"pages.css": "text/css; charset=utf-8"}

#: Only the service's own stylesheet; no script at all; forms post back to the service.
PAGES_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
FORM_COOKIE = "sendmed_form"
_FORM_CONTEXT = b"send-referrals link page form v1"
_CLIENT_CONTEXT = b"send-referrals link page client v1"


@cache
def environment() -> Environment:
    loader = ChoiceLoader(
        [
            FileSystemLoader(HERE / "templates"),
            PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
        ]
    )
    return Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True)


def page(
    template: str, *, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    html = environment().get_template(template).render(**context)
    response = HTMLResponse(html, status_code=status, headers=headers)
    response.headers["content-security-policy"] = PAGES_CSP
    response.headers["cache-control"] = "no-store"
    return response


def _derived(keyring: Keyring, context: bytes) -> bytes:
    return hmac.new(keyring.keys[keyring.active], context, hashlib.sha256).digest()


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def form_token(keyring: Keyring, nonce: str, link_id: str, step: str) -> str:
    """The hidden field bound to the browser's form cookie, the link and the step (CSRF:
    a page elsewhere can neither read the cookie nor compute this)."""
    message = f"{nonce}|{link_id}|{step}".encode()
    return hmac.new(_derived(keyring, _FORM_CONTEXT), message, hashlib.sha256).hexdigest()


def form_token_ok(
    keyring: Keyring, nonce: str | None, token: str | None, link_id: str, step: str
) -> bool:
    if not nonce or not token:
        return False
    return hmac.compare_digest(form_token(keyring, nonce, link_id, step), token)


def client_key(keyring: Keyring, address: str) -> str:
    """The rate limit's key for a client address: keyed, so the table holds no address."""
    key = _derived(keyring, _CLIENT_CONTEXT)
    return hmac.new(key, address.encode(), hashlib.sha256).hexdigest()[:32]
