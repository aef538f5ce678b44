"""API keys: the format, how they are stored, and the CLI that creates, lists and revokes them.

A key is ``srk_<key id>.<secret>``: the key id (16 hex characters) is public and names the
database row, so a lookup is one primary-key read; the secret is 32 random bytes
(URL-safe base64) shown once, when the key is created. Only the SHA-256 of the secret is
stored, and it is compared in constant time. (A slow password hash such as scrypt or argon2
protects *guessable* secrets; a 256-bit random secret cannot be guessed, so a fast hash loses
nothing and costs microseconds per request instead of tens of milliseconds.)

    python -m api.keys create --name council-crm --scope referrals:read --scope referrals:write \\
        [--local-authority E10000015]
    python -m api.keys list
    python -m api.keys revoke <key id>
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.store.auth_tables import ApiKeyRow

PREFIX = "srk_"
KEY_ID_HEX = 16
SECRET_BYTES = 32
TOKEN_PATTERN = re.compile(r"^srk_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
LA_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class Scope(StrEnum):
    """What a key may do. ``admin`` may do everything."""

    REFERRALS_READ = "referrals:read"
    REFERRALS_WRITE = "referrals:write"
    REPORTS_READ = "reports:read"
    REGISTRIES_WRITE = "registries:write"
    WEBHOOKS_MANAGE = "webhooks:manage"
    METRICS_READ = "metrics:read"
    CODEC = "codec"
    ADMIN = "admin"


ALL_SCOPES: frozenset[str] = frozenset(s.value for s in Scope)

#: Scopes whose every answer reaches all councils at once: the registries (one provider,
#: mediator or venue serves several councils), the codec (it decrypts any payload), the
#: service-wide metrics, and ``admin``. A key limited to some councils may not hold them: it
#: is refused at creation, and a key stored with one before this rule is treated as not
#: holding it (403 naming why).
COUNCIL_WIDE_SCOPES: frozenset[str] = frozenset(
    {Scope.REGISTRIES_WRITE.value, Scope.CODEC.value, Scope.METRICS_READ.value, Scope.ADMIN.value}
)
COUNCIL_WIDE_REASON = (
    "a key limited to councils cannot hold {scopes}: registries, the codec and the service's "
    "metrics reach every council; use a key for all councils (no --local-authority)"
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its client system, its scopes and councils."""

    key_id: str
    name: str
    scopes: frozenset[str]
    local_authorities: frozenset[str] | None

    @property
    def effective_scopes(self) -> frozenset[str]:
        """The scopes it may use: a council-limited key's council-wide ones are void."""
        if self.local_authorities is None:
            return self.scopes
        return self.scopes - COUNCIL_WIDE_SCOPES

    def allows(self, scope: str) -> bool:
        effective = self.effective_scopes
        return scope in effective or Scope.ADMIN.value in effective

    def voided(self, scope: str) -> bool:
        """Whether the key holds ``scope`` (or admin) only on paper: limited to councils."""
        held = scope in self.scopes or Scope.ADMIN.value in self.scopes
        return held and not self.allows(scope)


@dataclass(frozen=True)
class NewKey:
    key_id: str
    token: str


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed key, else None."""
    match = TOKEN_PATTERN.match(token)
    return (match.group(1), match.group(2)) if match else None


def new_token() -> tuple[str, str, str]:
    """A fresh ``(key id, secret, token)``."""
    key_id = secrets.token_hex(KEY_ID_HEX // 2)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")
    return key_id, secret, f"{PREFIX}{key_id}.{secret}"


def _validate(name: str, scopes: Iterable[str], local_authorities: Iterable[str] | None) -> None:
    if not NAME_PATTERN.match(name):
        raise ValueError("name: letters, digits, '.', '_', ':' or '-' (max 128)")
    unknown = sorted(set(scopes) - ALL_SCOPES)
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {sorted(ALL_SCOPES)}")
    if not set(scopes):
        raise ValueError("give at least one --scope")
    for code in local_authorities or ():
        if not LA_PATTERN.match(code):
            raise ValueError(f"local authority code {code!r} is not a council code")
    council_wide = sorted(set(scopes) & COUNCIL_WIDE_SCOPES)
    if local_authorities and council_wide:
        raise ValueError(COUNCIL_WIDE_REASON.format(scopes=", ".join(council_wide)))


async def create_key(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    name: str,
    scopes: Iterable[str],
    local_authorities: Iterable[str] | None = None,
) -> NewKey:
    """Store a new key for client ``name``; returns the token (shown once, never stored)."""
    scopes = sorted(set(scopes))
    councils = sorted(set(local_authorities)) if local_authorities else None
    _validate(name, scopes, councils)
    key_id, secret, token = new_token()
    async with sessionmaker() as session:
        session.add(
            ApiKeyRow(
                key_id=key_id,
                name=name,
                secret_sha256=secret_digest(secret),
                scopes=scopes,
                local_authorities=councils,
                created_at=datetime.now(UTC),
            )
        )
        await session.commit()
    return NewKey(key_id=key_id, token=token)


async def authenticate(
    sessionmaker: async_sessionmaker[AsyncSession], token: str
) -> Principal | None:
    """The principal behind a bearer token, or None (malformed, unknown, wrong or revoked)."""
    parsed = parse_token(token)
    if parsed is None:
        return None
    key_id, secret = parsed
    async with sessionmaker() as session:
        row = await session.get(ApiKeyRow, key_id)
    # Compare even when the key is unknown, so timing does not tell the two apart.
    expected = row.secret_sha256 if row is not None else "0" * 64
    matches = hmac.compare_digest(expected.encode(), secret_digest(secret).encode())
    if row is None or not matches or row.revoked_at is not None:
        return None
    return Principal(
        key_id=row.key_id,
        name=row.name,
        scopes=frozenset(row.scopes),
        local_authorities=(
            frozenset(row.local_authorities) if row.local_authorities is not None else None
        ),
    )


async def list_keys(sessionmaker: async_sessionmaker[AsyncSession]) -> list[ApiKeyRow]:
    async with sessionmaker() as session:
        rows = await session.exec(select(ApiKeyRow).order_by(col(ApiKeyRow.created_at)))
        return list(rows.all())


async def revoke_key(sessionmaker: async_sessionmaker[AsyncSession], key_id: str) -> bool:
    """Revoke a key: refused once no API process trusts it any more (``api_key_cache_seconds``
    after it last verified, 5 s by default). False if unknown."""
    async with sessionmaker() as session:
        row = await session.get(ApiKeyRow, key_id)
        if row is None:
            return False
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            session.add(row)
            await session.commit()
        return True


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m api.keys", description="Create, list and revoke API keys."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a key (printed once)")
    create.add_argument("--name", required=True, help="the client system, e.g. herts-crm")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=sorted(ALL_SCOPES),
        help="repeat for several scopes",
    )
    create.add_argument(
        "--local-authority",
        action="append",
        default=None,
        help="limit the key to this council's referrals (repeatable); default: all councils",
    )
    sub.add_parser("list", help="list keys (never their secrets)")
    revoke = sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    return parser


async def _run(args: argparse.Namespace, database_url: str) -> int:
    from models.store.db import make_engine, make_sessionmaker

    engine = make_engine(database_url)
    maker = make_sessionmaker(engine)
    out = sys.stdout
    try:
        if args.command == "create":
            try:
                key = await create_key(
                    maker,
                    name=args.name,
                    scopes=args.scope,
                    local_authorities=args.local_authority,
                )
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)  # noqa: T201
                return 2
            out.write(
                f"Created key {key.key_id} for {args.name}.\n"
                "Store it now: it is shown only this once.\n\n"
                f"    {key.token}\n\n"
                f"Use it as:  Authorization: Bearer {key.token}\n"
            )
            return 0
        if args.command == "list":
            rows = await list_keys(maker)
            out.write(f"{'key id':<18}{'name':<24}{'state':<9}{'created':<22}scopes / councils\n")
            for row in rows:
                state = "revoked" if row.revoked_at else "active"
                councils = ",".join(row.local_authorities) if row.local_authorities else "all"
                out.write(
                    f"{row.key_id:<18}{row.name:<24}{state:<9}"
                    f"{row.created_at:%Y-%m-%d %H:%M UTC}      "
                    f"{' '.join(row.scopes)} / {councils}\n"
                )
            return 0
        if await revoke_key(maker, args.key_id):
            out.write(f"Revoked {args.key_id}.\n")
            return 0
        print(f"error: no key {args.key_id}", file=sys.stderr)  # noqa: T201
        return 1
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    from models import migrate
    from models.settings import Settings

    args = _parser().parse_args(argv)
    settings = Settings()
    migrate.upgrade(settings.database_target)
    return asyncio.run(_run(args, settings.database_target))


if __name__ == "__main__":
    sys.exit(main())
