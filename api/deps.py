"""FastAPI dependencies: what the lifespan built, handed to routes as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from models.adapters.codec import EncryptionCodec
from models.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


def get_temporal(request: Request) -> Client:
    client: Client = request.state.temporal
    return client


def get_codec(request: Request) -> EncryptionCodec:
    """The payload codec (its keys also seal webhook secrets and sign list cursors)."""
    found = getattr(request.state, "codec", None)
    if isinstance(found, EncryptionCodec):
        return found
    return get_settings(request).payload_codec()


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.state.engine
    return engine


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session that commits at the edge if the route succeeded, else rolls back."""
    maker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SettingsDep = Annotated[Settings, Depends(get_settings)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
# scope="function": commit before the response is sent, so a failed commit is the caller's
# error and a read straight after sees the write.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
