"""The worker: runs referral workflows and their activities on one task queue.

``python worker.py`` (started by ``make run``) builds everything from ``Settings``: it applies
database migrations, connects to Temporal and runs until SIGINT/SIGTERM, then lets in-flight
activities finish (graceful shutdown) and exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.worker import (
    PollerBehavior,
    PollerBehaviorAutoscaling,
    PollerBehaviorSimpleMaximum,
    Worker,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.calendar import CalendarActivities
from activities.dispatch import DispatchConfig
from activities.documents import DocumentActivities
from activities.log_context import ReferralLogContext
from activities.mediators import MediatorActivities
from activities.notify import NotifyActivities
from activities.reconcile import ReconcileActivities
from activities.records import RecordActivities
from activities.retention import RetentionActivities
from models import migrate
from models.adapters.logging import configure_logging
from models.adapters.mail import Mailer, OutboxMailer, SmtpMailer
from models.adapters.webhooks import WebhookSender
from models.settings import Settings
from models.store.db import make_engine, make_sessionmaker
from models.store.subscriptions import seal_webhook_secrets
from workflows.client import connect, data_converter, metrics_runtime, tls_config
from workflows.reconcile import ReconcileWorkflow
from workflows.referral import ReferralWorkflow
from workflows.retention import RetentionWorkflow
from workflows.schedules import ensure_reconcile_schedule, ensure_retention_schedule

log = logging.getLogger("worker")

WORKFLOWS: tuple[type, ...] = (ReferralWorkflow, RetentionWorkflow, ReconcileWorkflow)

# Pure third-party modules that pydantic imports lazily while decoding workflow inputs.
PASSTHROUGH_MODULES = ("email_validator", "idna", "dns", "dateutil")


#: Connections the worker keeps open between sends (``run``; closed when it stops): idle SMTP
#: connections, and webhook endpoints with a kept client. Elsewhere (tests building the
#: activities in their own process) every send has its own connection.
KEPT_SMTP_CONNECTIONS = 4
KEPT_WEBHOOK_ENDPOINTS = 32


def build_mailer(settings: Settings, *, keep: int = 0) -> Mailer:
    """SMTP when a host is configured (keeping up to ``keep`` idle connections), else
    ``.eml`` files under the outbox directory."""
    if settings.smtp_host:
        return SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            implicit_tls=settings.smtp_implicit_tls,
            timeout=settings.send_timeout_seconds,
            pool_size=keep,
        )
    return OutboxMailer(settings.mail_outbox_dir)


def build_webhooks(settings: Settings, *, keep: int = 0) -> WebhookSender:
    return WebhookSender(
        timeout=settings.send_timeout_seconds,
        allowed_hosts=settings.webhook_allowed_hosts,
        allow_public=settings.webhook_allow_public_addresses,
        keep_clients=keep,
    )


def build_activities(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    mailer: Mailer | None = None,
    webhooks: WebhookSender | None = None,
) -> list[Any]:
    calendar = CalendarActivities(extra_holidays=settings.extra_bank_holidays)
    mailer = mailer or build_mailer(settings)  # SMTP, or .eml files under <data_dir>/outbox
    webhooks = webhooks or build_webhooks(settings)
    dispatch = DispatchConfig.from_settings(settings)
    notify = NotifyActivities(sessionmaker, mailer, webhooks, dispatch)
    records = RecordActivities(sessionmaker, publisher=notify.publish_now)
    documents = DocumentActivities(sessionmaker, mailer, webhooks, dispatch)
    mediators = MediatorActivities(sessionmaker)
    retention = RetentionActivities(
        sessionmaker,
        retention_days=settings.retention_days,
        idempotency_retention_days=settings.idempotency_retention_days,
    )
    reconcile = ReconcileActivities(sessionmaker, mailer, dispatch, webhooks)
    return [
        reconcile.reconcile_stopped_referrals,
        reconcile.cancellation_requested_by,
        retention.erase_expired_referrals,
        calendar.load_bank_holidays,
        records.record_referral,
        records.project_referral,
        notify.send_notification,
        notify.publish_events,
        documents.dispatch_document,
        mediators.vet_and_reserve_booking,
        mediators.release_reservation,
    ]


def sandbox_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def build_worker(
    client: Client,
    *,
    task_queue: str,
    activities: Sequence[Any],
    workflows: Sequence[type] = WORKFLOWS,
    max_cached_workflows: int = 1000,
    max_concurrent_activities: int | None = None,
    max_concurrent_workflow_tasks: int | None = None,
    poller_autoscaling: bool = False,
    graceful_shutdown_seconds: float = 15.0,
    eager_activities: bool = False,
) -> Worker:
    pollers: PollerBehavior = (
        PollerBehaviorAutoscaling() if poller_autoscaling else PollerBehaviorSimpleMaximum(5)
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(workflows),
        activities=list(activities),
        max_cached_workflows=max_cached_workflows,
        max_concurrent_activities=max_concurrent_activities,
        max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
        graceful_shutdown_timeout=timedelta(seconds=graceful_shutdown_seconds),
        # Heartbeats at most every 2 s (the SDK's default throttle is 0.8 x the timeout: 8 s of
        # our 10 s). No eager activities by default: an activity handed back with the workflow
        # task counts as started at once, and with the worker saturated
        # (bench/year_of_england.py, two workers) some missed their 10 s heartbeat timeout and
        # were retried (a referral took up to 75 s instead of ~10 s). Eager dispatch saves
        # CPU and latency; docs/PERFORMANCE.md measures both ways.
        max_heartbeat_throttle_interval=timedelta(seconds=2),
        disable_eager_activity_execution=not eager_activities,
        workflow_runner=sandbox_runner(),
        interceptors=[ReferralLogContext()],  # activity logs carry referral_id
        workflow_task_poller_behavior=pollers,
        activity_task_poller_behavior=pollers,
    )


async def run(settings: Settings) -> None:
    if settings.migrate_on_start:  # off where a migration job runs first (deploy/)
        await asyncio.to_thread(migrate.upgrade, settings.database_target)
    engine = make_engine(settings.database_target, pre_ping=False)  # activities retry
    codec = settings.payload_codec()
    sealed = await seal_webhook_secrets(make_sessionmaker(engine), codec.keyring)
    if sealed:
        log.info("sealed %d webhook secret(s) stored before sealing", sealed)
    converter = data_converter(codec)  # payloads encrypted
    client = await connect(
        settings.temporal_target,
        settings.temporal_namespace,
        converter=converter,
        tls=tls_config(settings),
        # The SDK's metrics (task latencies, schedule-to-start, slots) for Prometheus.
        runtime=metrics_runtime(settings.worker_metrics_address),
    )
    if settings.retention_schedule:
        await ensure_retention_schedule(client, settings.task_queue)
    if settings.reconcile_schedule:
        await ensure_reconcile_schedule(
            client, settings.task_queue, settings.reconcile_interval_minutes
        )
    mailer = build_mailer(settings, keep=KEPT_SMTP_CONNECTIONS)
    webhooks = build_webhooks(settings, keep=KEPT_WEBHOOK_ENDPOINTS)
    worker = build_worker(
        client,
        task_queue=settings.task_queue,
        activities=build_activities(
            make_sessionmaker(engine), settings, mailer=mailer, webhooks=webhooks
        ),
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        poller_autoscaling=settings.worker_poller_autoscaling,
        graceful_shutdown_seconds=settings.worker_graceful_shutdown_seconds,
        eager_activities=settings.worker_eager_activities,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with worker:
            log.info("worker started on task queue %s", settings.task_queue)
            await stop.wait()
            log.info("worker stopping")
    finally:
        if isinstance(mailer, SmtpMailer):
            await mailer.aclose()
        await webhooks.aclose()
        await engine.dispose()


def main() -> None:
    # The sandbox imports the workflow modules again for every workflow run it starts: from
    # their cached bytecode, not by compiling the source each time, even where the environment
    # says PYTHONDONTWRITEBYTECODE (a few per cent of the worker's CPU under load).
    sys.dont_write_bytecode = False
    settings = Settings()
    configure_logging(settings)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
