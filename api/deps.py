"""FastAPI dependencies: what the lifespan built, handed to routes as ``Annotated`` aliases.

Routes take everything through these (``SessionDep``, ``SessionmakerDep``, ``TemporalDep``,
``SettingsDep``, ``CodecDep``, ``CallerDep``, ``ReferralId``); only this module and
``api/auth.py`` read ``request.state``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from models.adapters.codec import EncryptionCodec
from models.settings import Settings

# Every dependency here is ``async def``: FastAPI runs a plain ``def`` dependency in its
# thread pool, a thread hop per dependency per request for what is an attribute read.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


async def get_temporal(request: Request) -> Client:
    client: Client = request.state.temporal
    return client


def codec_of(request: Request) -> EncryptionCodec:
    """The payload codec (its keys also seal webhook secrets and sign list cursors)."""
    found = getattr(request.state, "codec", None)
    if isinstance(found, EncryptionCodec):
        return found
    settings: Settings = request.state.settings
    return settings.payload_codec()


async def get_codec(request: Request) -> EncryptionCodec:
    return codec_of(request)


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.state.engine
    return engine


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """For routes that open their own sessions (each write committed before they answer)."""
    maker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    return maker


async def find_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession] | None:
    """The sessionmaker, or None in an app started without its lifespan (``/metrics``)."""
    maker: async_sessionmaker[AsyncSession] | None = getattr(request.state, "sessionmaker", None)
    return maker


#: A route reached without a key (none is: ``api/auth.py`` refuses them) acts as this client.
DEFAULT_CLIENT = "api"


async def get_caller(request: Request) -> str:
    """The caller's identity: its API key's id (never its name, which need not be unique),
    set by ``api/auth.py``: the audit actor and the owner of idempotency records."""
    value = getattr(request.state, "client_id", None)
    return value if isinstance(value, str) else DEFAULT_CLIENT


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session that commits at the edge if the route succeeded, else rolls back."""
    async with (await get_sessionmaker(request))() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SettingsDep = Annotated[Settings, Depends(get_settings)]
CodecDep = Annotated[EncryptionCodec, Depends(get_codec)]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
CallerDep = Annotated[str, Depends(get_caller)]
ReferralId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="The referral's id.")]
TemporalDep = Annotated[Client, Depends(get_temporal)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
# scope="function": commit before the response is sent, so a failed commit is the caller's
# error and a read straight after sees the write.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
