"""The FastAPI application. Run with ``uvicorn api.main:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from api import docs, errors, hardening, ids, metrics, openapi
from api.routes import (
    codec,
    documents,
    export,
    health,
    listing,
    pages,
    referrals,
    registries,
    reports,
    timescales,
    webhooks,
)
from models.adapters.codec import EncryptionCodec
from models.adapters.logging import configure_logging
from models.settings import Settings
from models.store.db import make_engine, make_sessionmaker
from workflows.client import connect, data_converter, metrics_runtime, tls_config


class State(TypedDict):
    settings: Settings
    temporal: Client
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    codec: EncryptionCodec


DESCRIPTION = """
Runs SEND Disagreement Resolution and Mediation referrals (England) as durable workflows.

Every legal date follows `RULES.md`: working days exclude weekends and England & Wales bank
holidays, months follow the corresponding-date rule, the appeal deadline follows HESC rule 12.
Errors are RFC 9457 `application/problem+json`.
"""


def create_app(settings: Settings | None = None, temporal: Client | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[State]:
        s = settings if settings is not None else Settings()
        configure_logging(s)
        codec = s.payload_codec()  # payloads encrypted; also serves /codec
        client = temporal
        if client is None:
            # Lazy: the API starts (and /readyz answers 503) while Temporal is still down.
            client = await connect(
                s.temporal_target,
                s.temporal_namespace,
                lazy=True,
                converter=data_converter(codec),
                tls=tls_config(s),
                runtime=metrics_runtime(s.api_temporal_metrics_address),  # client metrics
            )
        engine = make_engine(s.database_target)
        try:
            yield State(
                settings=s,
                temporal=client,
                engine=engine,
                sessionmaker=make_sessionmaker(engine),
                codec=codec,
            )
        finally:
            await engine.dispose()

    app = FastAPI(
        title="SEND referrals",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # api/docs.py serves /docs from local files
        redoc_url=None,
        separate_input_output_schemas=False,  # one component per model (api/openapi.py)
        generate_unique_id_function=openapi.operation_id,  # operationId = the route's name
    )
    errors.install(app)
    docs.install(app)
    hardening.install(app)  # API keys and scopes (api/auth.py), body limit, /codec CORS, headers
    metrics.install(app)  # request metrics and access log; GET /metrics
    ids.install(app)  # outermost: referral-<uuid> in a path is read as <uuid>
    openapi.install(app)  # Problem responses, examples, binary bodies (after auth's security)
    app.include_router(health.router)
    app.include_router(referrals.router, prefix="/v1")
    app.include_router(listing.router, prefix="/v1")
    app.include_router(registries.router, prefix="/v1")
    app.include_router(reports.router, prefix="/v1")
    app.include_router(timescales.router, prefix="/v1")
    app.include_router(documents.router, prefix="/v1")
    app.include_router(webhooks.router, prefix="/v1")
    app.include_router(export.router, prefix="/v1")
    app.include_router(codec.router)
    app.include_router(pages.router)  # /respond/<token>: parties answer from their email link
    return app
