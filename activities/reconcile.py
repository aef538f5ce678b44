"""What a referral's workflow cannot do for itself once Temporal has stopped it.

``reconcile_stopped_referrals`` (run by the ``reconcile-referrals`` schedule): a workflow that
is **terminated**, **fails** or **times out** (or was cancelled before the workflow handled
cancellation) ends without closing its case, so the read model would say "open" for ever:
no deadlines tracked, no certificate coming, every command a 409. The activity asks
Temporal's visibility for referral workflows that ended that way, and for each whose read
model still says open it marks the referral ``stopped`` (one transaction: the row, its
snapshot and a ``referral.stopped`` timeline event), then emails the provider once: the
referral id and what happened, no personal data. The ``sendmed_referrals_stopped_total``
metric counts the events.

``cancellation_requested_by``: the identity on a cancellation request (the Web UI's
"Request Cancellation"), read from the workflow's history, for the timeline's actor.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.dispatch import Case, DispatchConfig, Dispatcher, Reach, keepalive
from activities.records import referral_row_values
from models.adapters.delivery import TransientFailure
from models.adapters.mail import Mailer, OutgoingMail
from models.adapters.webhooks import WebhookSender
from models.domain.referral import Referral, Status
from models.messages import (
    CANCELLATION_REQUESTED_BY,
    RECONCILE_STOPPED_REFERRALS,
    REFERRAL_WORKFLOW,
    CancellationQuery,
    ReconcileRequest,
    ReconcileResult,
    referral_id_from_workflow_id,
)
from models.store.db import dialect_of, insert_stmt
from models.store.tables import ReferralEventRow, ReferralRow, table_of

log = logging.getLogger(__name__)

#: Executions that ended without the workflow closing its case.
STOPPED_QUERY = (
    f'WorkflowType = "{REFERRAL_WORKFLOW}" AND '
    'ExecutionStatus IN ("Terminated", "Failed", "TimedOut", "Canceled")'
)
SYSTEM_ACTOR = "system (reconciler)"
_PRINTABLE = re.compile(r"[^\x20-\x7e]")


class ReconcileActivities:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        mailer: Mailer,
        config: DispatchConfig,
        webhooks: WebhookSender | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._dialect = dialect_of(sessionmaker)
        self._dispatcher = Dispatcher(sessionmaker, mailer, webhooks or WebhookSender(), config)
        self._config = config

    @activity.defn(name=RECONCILE_STOPPED_REFERRALS)
    async def reconcile_stopped_referrals(self, req: ReconcileRequest) -> ReconcileResult:
        """Mark ``stopped`` every open referral whose workflow ended without closing it."""
        async with keepalive():
            checked = 0
            stopped: list[str] = []
            retry: list[str] = []
            async for execution in activity.client().list_workflows(STOPPED_QUERY):
                checked += 1
                referral_id = referral_id_from_workflow_id(execution.id)
                how = execution.status.name.lower() if execution.status else "stopped"
                if await self._stop(referral_id, how, req.today):
                    stopped.append(referral_id)
                    log.warning("referral %s marked stopped: its workflow %s", referral_id, how)
                try:
                    await self._tell_provider(referral_id, how)
                except TransientFailure as exc:
                    retry.append(exc.detail)
            if retry:
                raise RuntimeError(f"{len(retry)} provider email(s) to retry: {'; '.join(retry)}")
            return ReconcileResult(checked=checked, stopped=tuple(stopped))

    async def _stop(self, referral_id: str, how: str, today: date) -> bool:
        """In one transaction: the row and snapshot say ``stopped``, and the timeline says why.
        False if unknown, or already closed or stopped (nothing to do, nothing done twice)."""
        now = datetime.now(UTC)
        rows = table_of(ReferralRow)
        events = table_of(ReferralEventRow)
        async with self._sessionmaker() as session:
            row = await session.get(ReferralRow, referral_id)
            if row is None or row.status in (Status.CLOSED.value, Status.STOPPED.value):
                return False
            referral = Referral.model_validate(row.snapshot)
            stopped = referral.model_copy(
                update={
                    "status": Status.STOPPED,
                    "stopped_on": today,
                    "version": referral.version + 1,
                    "closure_reason": f"the workflow was {how} while the case was open; "
                    "nothing more happens automatically: an operator must take it up",
                }
            )
            values = referral_row_values(stopped, now)
            result = await session.exec(
                update(rows)
                .where(rows.c.id == referral_id, rows.c.version == row.version)
                .values({k: v for k, v in values.items() if k not in ("id", "created_at")})
            )
            if int(result.rowcount or 0) != 1:  # changed meanwhile: the next run looks again
                await session.rollback()
                return False
            last = await session.scalar(
                select(func.max(events.c.seq)).where(events.c.referral_id == referral_id)
            )
            event = insert_stmt(self._dialect, events).values(
                referral_id=referral_id,
                seq=int(last or 0) + 1,
                type="referral.stopped",
                occurred_on=today,
                recorded_at=now,
                actor=SYSTEM_ACTOR,
                data={"workflow_status": how, "from": referral.status.value},
            )
            await session.exec(event.on_conflict_do_nothing())
            await session.commit()
            return True

    async def _tell_provider(self, referral_id: str, how: str) -> None:
        async with self._sessionmaker() as session:
            row = await session.get(ReferralRow, referral_id)
        if row is None or row.status != Status.STOPPED.value:
            return
        case = await self._dispatcher.case(referral_id)
        to = case.provider_email or self._config.escalation_email
        if not to:
            log.error("referral %s stopped and nobody can be told: no provider email", referral_id)
            return
        key = f"{referral_id}:stopped"
        body = stopped_email(case, how, self._config.base_url)

        def compose(address: str, when: datetime) -> OutgoingMail:
            return OutgoingMail(
                key=key,
                sender=self._config.mail_from,
                sender_name="SEND referrals service",
                to=address,
                subject=f"Referral {referral_id} has stopped and needs attention",
                body=body,
                date=when,
            )

        await self._dispatcher.email(
            case,
            key=key,
            purpose="escalation",
            recipient="provider",
            target=Reach("email", to),
            compose=compose,
            escalate=False,
        )

    @activity.defn(name=CANCELLATION_REQUESTED_BY)
    async def cancellation_requested_by(self, query: CancellationQuery) -> str:
        """The identity on the workflow's cancellation request ("" if none was given)."""
        handle = activity.client().get_workflow_handle(query.workflow_id, run_id=query.run_id)
        identity = ""
        async for event in handle.fetch_history_events():
            if event.HasField("workflow_execution_cancel_requested_event_attributes"):
                identity = event.workflow_execution_cancel_requested_event_attributes.identity
        return _PRINTABLE.sub("", identity).strip()[:80]


def stopped_email(case: Case, how: str, base_url: str) -> str:
    """To the provider: which referral, what happened, what to do. No personal data."""
    referral_id = case.referral.id
    return (
        "\n".join(
            [
                "Hello,",
                "",
                f"The workflow that runs referral {referral_id} was {how} in Temporal while the "
                "case was still open. The referral is now marked 'stopped': from here nothing "
                "happens by itself (no deadlines tracked, no reminders, no certificate issued "
                "automatically) and commands are refused.",
                "",
                "Please check the case with your operations staff and deal with it by hand. Its "
                "deadlines and history stay readable:",
                f"{base_url.rstrip('/')}/v1/referrals/{referral_id}",
                f"{base_url.rstrip('/')}/v1/referrals/{referral_id}/events",
                "",
                "This happens when someone presses Terminate or Reset in the Temporal Web UI, or "
                "when the workflow fails. The production deployment switches those buttons off.",
            ]
        )
        + "\n"
    )
