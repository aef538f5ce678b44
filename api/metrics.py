"""Prometheus metrics at ``GET /metrics`` (scope ``metrics:read``), and the API's request log.

Two kinds of series, none with personal data in a label (every label value is a method, a
route *template*, a status code, or a code from a closed set; anything else becomes ``other``):

- **Requests**, counted by :class:`MetricsMiddleware` (outermost, so 401/403/413 answers count
  too): ``sendmed_http_requests_total`` and the latency histogram
  ``sendmed_http_request_duration_seconds``, by ``method``, ``route`` (the template, e.g.
  ``/v1/referrals/{referral_id}``; ``<unmatched>`` for unknown paths) and ``status``; plus the
  process's own ``process_*``/``python_*`` series. Per API replica: sum them across instances.
- **The service's business**, read from the read model at scrape time (a few indexed
  ``GROUP BY`` queries, bounded by :data:`READ_MODEL_TIMEOUT`), so every replica reports the
  same totals whichever one did the work: aggregate them with ``max``, never ``sum``.

  ==========================================  ========  ==================================
  ``sendmed_referrals``                        gauge     by ``route``, ``status``
  ``sendmed_referrals_in_breach``              gauge     open referrals with a breached
                                                         deadline, by ``route``
  ``sendmed_deadlines_breached_total``         counter   deadlines that passed unmet (the
                                                         ``deadline.breached`` events), by
                                                         ``deadline``; agreed actions as
                                                         ``agreed_action``
  ``sendmed_deadline_breaches_corrected_total``  counter  breaches later corrected by a
                                                         fact dated in time (``deadline.met``
                                                         with ``corrected``), by ``deadline``
  ``sendmed_referrals_stopped_total``          counter   referrals the reconciler marked
                                                         ``stopped`` (workflow terminated,
                                                         failed or timed out while open)
  ``sendmed_certificates_issued_total``        counter   by ``kind``
  ``sendmed_dispatch_failures_total``          counter   deliveries failed for good, by
                                                         ``purpose`` and ``channel``
  ``sendmed_deliveries_outstanding``           gauge     deliveries ``pending``/``sending``
  ``sendmed_read_model_up``                    gauge     1 if the figures above were read
  ``sendmed_read_model_scrape_duration_seconds``  gauge  how long reading them took
  ==========================================  ========  ==================================

The Temporal SDK's metrics (workflow and activity task latencies, schedule-to-start, slots)
come from the worker's own endpoint (``SENDMED_WORKER_METRICS_ADDRESS``, see
``workflows.client.metrics_runtime``), not from here.

Each request also writes one access-log line (``api.access``: method, route template, status,
duration) and, on routes with a ``{referral_id}``, sets
:data:`models.adapters.logging.referral_context` so that every line logged while serving it
carries ``referral_id``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Final

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import RouteEntry, route_path, route_table
from api.deps import find_sessionmaker
from models.adapters.logging import referral_context
from models.domain.referral import CertificateKind, Route, Status
from models.store.document_tables import FAILED, PENDING, SENDING, DeliveryRow
from models.store.tables import ReferralEventRow, ReferralRow, table_of

log = logging.getLogger(__name__)
access_log = logging.getLogger("api.access")

PREFIX: Final = "sendmed"
OTHER: Final = "other"
UNMATCHED: Final = "<unmatched>"
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Request latency buckets (seconds): fine below 100 ms, where the API's reads live.
BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: The read-model queries of one scrape give up after this; ``sendmed_read_model_up`` is 0.
READ_MODEL_TIMEOUT: Final = 5.0
#: Probes and scrapes are counted but logged at DEBUG only (they come every few seconds).
QUIET_ROUTES: Final = frozenset({"/healthz", "/readyz", "/metrics"})

ROUTES: Final = tuple(r.value for r in Route)
STATUSES: Final = tuple(s.value for s in Status)
CERTIFICATE_KINDS: Final = tuple(k.value for k in CertificateKind)
PURPOSES: Final = ("document", "notification", "event", "escalation")
CHANNELS: Final = ("email", "webhook", "post", "phone", "none")
OUTSTANDING: Final = (PENDING, SENDING)
AGREED_ACTION: Final = "agreed_action"
EVENT_TYPES_COUNTED: Final = (
    "certificate.issued",
    "deadline.breached",
    "action.breached",
    "deadline.met",
    "referral.stopped",
)
#: Deadline names are code identifiers (``mediation_must_be_arranged_by``); nothing else passes.
_DEADLINE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _label(value: object, allowed: Iterable[str]) -> str:
    text = str(value) if value is not None else ""
    return text if text in allowed else OTHER


def _deadline_label(value: object) -> str:
    text = str(value) if value is not None else ""
    return text if _DEADLINE.match(text) else OTHER


# --------------------------------------------------------------------------- the read model


@dataclass(frozen=True)
class ReadModelCounts:
    """What the business series report, as read from the database in one scrape."""

    referrals: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (route, status)
    in_breach: Mapping[str, int] = field(default_factory=dict)  # route (open referrals)
    deadlines_breached: Mapping[str, int] = field(default_factory=dict)  # deadline
    breaches_corrected: Mapping[str, int] = field(default_factory=dict)  # deadline
    stopped: int = 0  # referral.stopped events
    certificates: Mapping[str, int] = field(default_factory=dict)  # kind
    dispatch_failures: Mapping[tuple[str, str], int] = field(default_factory=dict)
    deliveries_outstanding: Mapping[str, int] = field(default_factory=dict)  # status


def _add(counts: dict[tuple[str, ...], int], key: tuple[str, ...], n: int) -> None:
    counts[key] = counts.get(key, 0) + int(n)


async def read_model_counts(maker: async_sessionmaker[AsyncSession]) -> ReadModelCounts:
    """Three grouped counts, each over indexed columns: referrals (status/route/breached),
    breach and certificate events (``ix_referral_event_type_on``), failed and outstanding
    deliveries (``ix_delivery_status``)."""
    referral = table_of(ReferralRow)
    event = table_of(ReferralEventRow)
    delivery = table_of(DeliveryRow)
    closed = Status.CLOSED.value
    referrals: dict[tuple[str, ...], int] = {}
    in_breach: dict[tuple[str, ...], int] = {}
    breaches: dict[tuple[str, ...], int] = {}
    corrected: dict[tuple[str, ...], int] = {}
    stopped = 0
    certificates: dict[tuple[str, ...], int] = {}
    failures: dict[tuple[str, ...], int] = {}
    outstanding: dict[tuple[str, ...], int] = {}
    async with maker() as session:
        conn = await session.connection()
        rows = await conn.execute(
            select(referral.c.route, referral.c.status, referral.c.breached, func.count()).group_by(
                referral.c.route, referral.c.status, referral.c.breached
            )
        )
        for route, status, breached, n in rows:
            key = (_label(route, ROUTES), _label(status, STATUSES))
            _add(referrals, key, n)
            if breached and status != closed:
                _add(in_breach, key[:1], n)
        kind = event.c.data["kind"].as_string()
        deadline = event.c.data["deadline"].as_string()
        fixed = event.c.data["corrected"].as_boolean()
        rows = await conn.execute(
            select(event.c.type, kind, deadline, fixed, func.count())
            .where(event.c.type.in_(EVENT_TYPES_COUNTED))
            .group_by(event.c.type, kind, deadline, fixed)
        )
        for type_, kind_value, deadline_value, fixed_value, n in rows:
            if type_ == "certificate.issued":
                _add(certificates, (_label(kind_value, CERTIFICATE_KINDS),), n)
            elif type_ == "deadline.breached":
                _add(breaches, (_deadline_label(deadline_value),), n)
            elif type_ == "action.breached":
                _add(breaches, (AGREED_ACTION,), n)
            elif type_ == "referral.stopped":
                stopped += int(n)
            elif fixed_value:  # deadline.met correcting a breach
                _add(corrected, (_deadline_label(deadline_value),), n)
        rows = await conn.execute(
            select(delivery.c.status, delivery.c.purpose, delivery.c.channel, func.count())
            .where(delivery.c.status.in_((FAILED, *OUTSTANDING)))
            .group_by(delivery.c.status, delivery.c.purpose, delivery.c.channel)
        )
        for status, purpose, channel, n in rows:
            if status == FAILED:
                _add(failures, (_label(purpose, PURPOSES), _label(channel, CHANNELS)), n)
            else:
                _add(outstanding, (str(status),), n)
    return ReadModelCounts(
        referrals={(k[0], k[1]): v for k, v in referrals.items()},
        in_breach={k[0]: v for k, v in in_breach.items()},
        deadlines_breached={k[0]: v for k, v in breaches.items()},
        breaches_corrected={k[0]: v for k, v in corrected.items()},
        stopped=stopped,
        certificates={k[0]: v for k, v in certificates.items()},
        dispatch_failures={(k[0], k[1]): v for k, v in failures.items()},
        deliveries_outstanding={k[0]: v for k, v in outstanding.items()},
    )


def business_families(counts: ReadModelCounts | None, seconds: float) -> list[Metric]:
    """The business series for ``counts`` (None: the database could not be read). Known
    label combinations are always present (0 when none), so dashboards have no gaps."""
    up = GaugeMetricFamily(
        f"{PREFIX}_read_model_up", "1 if this scrape read the business figures from the database."
    )
    up.add_metric([], 0 if counts is None else 1)
    took = GaugeMetricFamily(
        f"{PREFIX}_read_model_scrape_duration_seconds",
        "Seconds this scrape spent reading the business figures.",
    )
    took.add_metric([], seconds)
    if counts is None:
        return [up, took]
    referrals = GaugeMetricFamily(
        f"{PREFIX}_referrals", "Referrals by route and status.", labels=("route", "status")
    )
    for route in ROUTES:
        for status in STATUSES:
            referrals.add_metric([route, status], counts.referrals.get((route, status), 0))
    for (route, status), n in sorted(counts.referrals.items()):
        if route not in ROUTES or status not in STATUSES:
            referrals.add_metric([route, status], n)
    in_breach = GaugeMetricFamily(
        f"{PREFIX}_referrals_in_breach",
        "Open referrals with at least one breached deadline, by route.",
        labels=("route",),
    )
    for route in sorted({*ROUTES, *counts.in_breach}):
        in_breach.add_metric([route], counts.in_breach.get(route, 0))
    breaches = CounterMetricFamily(
        f"{PREFIX}_deadlines_breached",
        "Statutory deadlines that passed unmet, by deadline (agreed actions: agreed_action).",
        labels=("deadline",),
    )
    for name, n in sorted(counts.deadlines_breached.items()):
        breaches.add_metric([name], n)
    corrected = CounterMetricFamily(
        f"{PREFIX}_deadline_breaches_corrected",
        "Breaches the clock decided that a fact dated in time later corrected, by deadline.",
        labels=("deadline",),
    )
    for name, n in sorted(counts.breaches_corrected.items()):
        corrected.add_metric([name], n)
    stopped = CounterMetricFamily(
        f"{PREFIX}_referrals_stopped",
        "Referrals marked stopped: their workflow was terminated, failed or timed out while "
        "the case was open (the reconciler).",
    )
    stopped.add_metric([], counts.stopped)
    certificates = CounterMetricFamily(
        f"{PREFIX}_certificates_issued", "Mediation certificates issued, by kind.", labels=("kind",)
    )
    for kind in sorted({*CERTIFICATE_KINDS, *counts.certificates}):
        certificates.add_metric([kind], counts.certificates.get(kind, 0))
    failures = CounterMetricFamily(
        f"{PREFIX}_dispatch_failures",
        "Emails and webhooks that failed for good, by purpose and channel.",
        labels=("purpose", "channel"),
    )
    for (purpose, channel), n in sorted(counts.dispatch_failures.items()):
        failures.add_metric([purpose, channel], n)
    outstanding = GaugeMetricFamily(
        f"{PREFIX}_deliveries_outstanding",
        "Emails and webhooks not yet sent or failed, by status (pending, sending).",
        labels=("status",),
    )
    for status in OUTSTANDING:
        outstanding.add_metric([status], counts.deliveries_outstanding.get(status, 0))
    return [
        up,
        took,
        referrals,
        in_breach,
        breaches,
        corrected,
        stopped,
        certificates,
        failures,
        outstanding,
    ]


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


# --------------------------------------------------------------------------- the registry


class Metrics:
    """The API process's registry: request series and the process's own. Built by
    :func:`install` (per app, never at import); the business series are added per scrape."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
        self.registry = CollectorRegistry()
        labels = ("method", "route", "status")
        self.requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests answered, by method, route template and status.",
            labels,
            registry=self.registry,
        )
        self.duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status.",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        values = (method, route, str(status))
        self.requests.labels(*values).inc()
        self.duration.labels(*values).observe(seconds)

    async def exposition(self, maker: async_sessionmaker[AsyncSession] | None) -> bytes:
        started = time.perf_counter()
        counts: ReadModelCounts | None = None
        if maker is not None:
            try:
                counts = await asyncio.wait_for(read_model_counts(maker), READ_MODEL_TIMEOUT)
            except Exception as exc:  # the scrape still answers, with read_model_up 0
                log.warning("metrics: read model unavailable (%s)", type(exc).__name__)
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_Families(business_families(counts, time.perf_counter() - started)))
        return generate_latest(self.registry) + generate_latest(scrape)


def exported_names() -> set[str]:
    """Every sample name the API exports (``tests/deploy`` checks the dashboard against it)."""
    probe = Metrics()
    probe.observe("GET", "/healthz", 200, 0.001)
    names = {s.name for family in probe.registry.collect() for s in family.samples}
    full = ReadModelCounts(
        referrals={(ROUTES[0], STATUSES[0]): 1},
        in_breach={ROUTES[0]: 1},
        deadlines_breached={"deadline": 1},
        breaches_corrected={"deadline": 1},
        stopped=1,
        certificates={CERTIFICATE_KINDS[0]: 1},
        dispatch_failures={(PURPOSES[0], CHANNELS[0]): 1},
        deliveries_outstanding={PENDING: 1},
    )
    return names | {s.name for family in business_families(full, 0.0) for s in family.samples}


# --------------------------------------------------------------------------- the middleware


def _referral_id(value: str | None) -> str | None:
    """A path's ``{referral_id}`` only if it is an id: a typed path never reaches a log."""
    if not value:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


class MetricsMiddleware:
    """Pure ASGI, outermost: counts and times every request by its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._table: list[RouteEntry] | None = None

    def _resolve(self, scope: Scope) -> tuple[str, dict[str, str]]:
        if self._table is None:
            self._table = route_table(scope["app"])
        method: str = scope["method"]
        wanted = "GET" if method == "HEAD" else method
        path = route_path(scope)
        fallback: tuple[str, dict[str, str]] | None = None
        for entry in self._table:
            match = entry.regex.match(path)
            if match is None:
                continue
            if wanted in entry.methods or method in entry.methods:
                return entry.template, match.groupdict()
            fallback = fallback or (entry.template, match.groupdict())  # a 405
        return fallback or (UNMATCHED, {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        template, params = self._resolve(scope)
        referral_id = _referral_id(params.get("referral_id"))
        token = referral_context.set(referral_id) if referral_id else None
        status = 500  # unless the app answers

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - started
            label = method if method in METHODS else "OTHER"
            self.metrics.observe(label, template, status, seconds)
            access_log.log(
                logging.DEBUG if template in QUIET_ROUTES else logging.INFO,
                "%s %s %d %.1fms",
                label,
                template,
                status,
                seconds * 1000,
                extra={
                    "http_method": label,
                    "route": template,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
            if token is not None:
                referral_context.reset(token)


# --------------------------------------------------------------------------- the endpoint

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics: requests, referrals, breaches, certificates, dispatch",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(
    request: Request,
    maker: Annotated[async_sessionmaker[AsyncSession] | None, Depends(find_sessionmaker)],
) -> Response:
    collected: Metrics = request.app.state.metrics
    body = await collected.exposition(maker)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)


def install(app: FastAPI) -> Metrics:
    """The outermost middleware (request series, access log, referral id) and ``/metrics``."""
    collected = Metrics()
    app.state.metrics = collected
    app.add_middleware(MetricsMiddleware, metrics=collected)
    app.include_router(router)
    return collected
