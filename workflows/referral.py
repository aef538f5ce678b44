"""ReferralWorkflow: one durable workflow per referral, both routes, intake to closure.

Commands arrive as updates whose validators ask ``transitions.check`` whether they are legal
now (an illegal one is rejected before it reaches history). Handlers queue the command and
wait; the run loop feeds it through ``transitions.decide``, projects the new state to the
read model, and only then answers, so a read after a command sees it. Between commands the
loop sleeps on one named timer until the next day on which time alone changes something
(``timers.next_wake``): the day-30 deemed certificate, breaches, reminders.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.domain import intake, timers
    from models.domain import transitions as tr
    from models.domain.clock import london_date, start_of_london_day
    from models.domain.commands import BookMeeting, InPersonVenue
    from models.domain.deadlines import HolidayCalendar
    from models.domain.documents import FAMILY, PREFIX, document_number
    from models.domain.referral import (
        EDGE_RULES,
        LEGACY_RULES,
        PAGES_RULES,
        DocumentRef,
        MediationReferralCreate,
        MeetingStatus,
        Referral,
    )
    from models.domain.summary import any_breach, breaches, latest_breach, next_due, status_line
    from models.messages import (
        ACTION_UPDATE,
        BOOK_MEETING_UPDATE,
        CANCEL_MEETING_UPDATE,
        CANCELLATION_REQUESTED_BY,
        COMPLETE_ACTION_UPDATE,
        CREATED_UPDATE,
        DECLINE_MEDIATION_UPDATE,
        DISPATCH_DOCUMENT,
        IDEMPOTENCY_MISMATCH,
        ILLEGAL,
        INFORMATION_SESSION_UPDATE,
        INVALID,
        LA_UNABLE_TO_ARRANGE_UPDATE,
        LOAD_BANK_HOLIDAYS,
        MEETING_REPLY_UPDATE,
        PARTY_RESPONSE_UPDATE,
        PROJECT_REFERRAL,
        PUBLISH_EVENTS,
        RECORD_MEETING_UPDATE,
        RECORD_REFERRAL,
        REFERRAL_QUERY,
        REFERRAL_WORKFLOW,
        RELEASE_RESERVATION,
        REQUEST_MEDIATION_UPDATE,
        SEND_NOTIFICATION,
        SIGN_AGREEMENT_UPDATE,
        STATUS_EVENTS_ALWAYS,
        STATUS_EVENTS_EDGES,
        UNAVAILABLE,
        VET_AND_RESERVE_BOOKING,
        WITHDRAW_UPDATE,
        BookingRequest,
        BookingVetted,
        CancellationQuery,
        Closed,
        CommandEnvelope,
        Created,
        DispatchReport,
        DocumentRequest,
        EventRecord,
        HolidayRange,
        NotificationRequest,
        Projected,
        Projection,
        PublishRequest,
        Release,
        StartReferral,
        is_status_event,
    )
    from workflows import search_attributes as sa


# The lifecycle-edge rules (models.domain.transitions, "rules 2"), the handling of a
# cancellation request as an operator closure, and the webhooks above: one patch, taken at
# the start of the run and kept for the referral's life (``Referral.rules``).
EDGES_PATCH = "edges-v1"
# Earlier behaviour changes, each kept for the histories recorded before it.
DAILY_STATUS_LINE_PATCH = "daily-status-line"
TICK_AFTER_COMMAND_PATCH = "tick-after-command"
WEBHOOKS_PATCH = "webhooks-v1"
DOCUMENTS_PATCH = "documents-v1"
GLANCE_PATCH = "glance-search-attributes"
SEND_HEARTBEAT_PATCH = "send-heartbeat"
# Personal links (rules 3, models.domain.party_links): the family is asked for its decision
# after the information session, and meeting invitees may reply (``meeting_reply``). Taken
# with the edges patch at the start of the run, kept for the referral's life.
PAGES_PATCH = "pages-v1"
# Fewer round trips per referral (docs/PERFORMANCE.md): bank holidays and every projection as
# local activities (a marker each instead of scheduled/started/completed events and a workflow
# task), the projection delivering its webhooks at once (``publish_events`` only for what it
# could not), and one search-attribute upsert per workflow task, of the fields that changed.
# Taken at the start of the run with the pages patch, kept for the referral's life.
PERF_PATCH = "perf-v1"

PROJECTION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5)
)
BOOKING_RETRY = RetryPolicy(maximum_attempts=5, non_retryable_error_types=["BookingRejected"])
# Sending activities heartbeat in the background while they run (activities.dispatch.keepalive):
# a worker killed mid-send is noticed after this, not after the whole start-to-close timeout.
SEND_HEARTBEAT = timedelta(seconds=10)


@dataclass
class _Pending:
    envelope: CommandEnvelope
    result: Referral | None = None
    error: ApplicationError | None = None
    done: bool = False


def _error(exc: Exception) -> ApplicationError:
    if isinstance(exc, tr.IllegalTransition):
        return ApplicationError(
            exc.message,
            {"status": exc.status.value, "allowed": list(exc.allowed)},
            type=ILLEGAL,
            non_retryable=True,
        )
    if isinstance(exc, tr.InvalidCommand):
        return ApplicationError(exc.message, {"field": exc.field}, type=INVALID, non_retryable=True)
    raise exc


@workflow.defn(name=REFERRAL_WORKFLOW)
class ReferralWorkflow:
    @workflow.init
    def __init__(self, start: StartReferral) -> None:
        self._start = start
        self._referral: Referral | None = None
        self._cal: HolidayCalendar | None = None
        self._inbox: deque[_Pending] = deque()
        self._event_seq = 0
        self._effect_seq = 0
        self._projected_version = -1
        self._dispatches: list[asyncio.Task[None]] = []
        self._reports: deque[DispatchReport] = deque()
        self._edges = False
        self._pages = False
        self._perf = False
        # perf-v1: search attributes as last upserted, and whether the state changed since.
        self._attributes: dict[str, object] = {}
        self._unpublished = False

    # ------------------------------------------------------------------ run loop

    @workflow.run
    async def run(self, start: StartReferral) -> Closed:
        # perf-v1 implies every earlier patch: a new run records its one marker, not ten.
        self._perf = workflow.patched(PERF_PATCH)
        self._edges = self._perf or workflow.patched(EDGES_PATCH)
        self._pages = self._perf or (self._edges and workflow.patched(PAGES_PATCH))
        today = self._today()
        first = min(start.received_on, self._decision_date(start)).year - 1
        years = HolidayRange(first_year=first, last_year=today.year + 4)
        load = workflow.execute_local_activity if self._perf else workflow.execute_activity
        self._cal = await load(
            LOAD_BANK_HOLIDAYS,
            years,
            result_type=HolidayCalendar,
            start_to_close_timeout=timedelta(seconds=30),
            summary="load England & Wales bank holidays",
        )
        try:
            decision = intake.open_referral(
                start.referral_id,
                start.request,
                received_on=start.received_on,
                created_at=start.created_at,
                ctx=self._ctx(start.actor),
            )
        except (tr.InvalidCommand, tr.IllegalTransition) as exc:
            raise _error(exc) from exc
        await self._apply(decision)
        await self._apply(timers.tick(self._state, self._ctx()))

        if self._edges:
            try:
                await self._live(start)
            except asyncio.CancelledError:
                # The Web UI's "Request Cancellation" (WorkflowHandle.cancel()): handled
                # below as an operator closure; anything else is not ours to swallow.
                if workflow.cancellation_reason() is None:
                    raise
            if workflow.cancellation_reason() is not None:
                await self._operator_closure()
        else:
            await self._live(start)

        # Closed: answer whatever is still queued, let handlers finish, flush dispatches.
        while self._inbox:
            await self._process(self._inbox.popleft())
        self._flush_attributes()  # closed: shown at once, not after the last sends
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._dispatches:
            await asyncio.gather(*self._dispatches)
        await self._record_reports()
        self._flush_attributes()
        return Closed(
            referral_id=start.referral_id,
            outcome=self._state.outcome.value if self._state.outcome else None,
            closed_on=self._state.closed_on,
        )

    async def _live(self, start: StartReferral) -> None:
        """Until nothing more can happen: commands as they come, time as it passes. A closure
        decided by the clock alone keeps the loop alive for its correction window."""
        while not tr.finished(self._state):
            if self._edges and workflow.cancellation_reason() is not None:
                return  # a cancellation absorbed by an activity that was running
            wake = timers.next_wake(self._state, start.policy, self._calendar)
            if self._state.status_clock_running and self._patched(DAILY_STATUS_LINE_PATCH):
                # Wake each midnight while the 30-day clock runs, so "day N of 30" stays live.
                tomorrow = self._today() + timedelta(days=1)
                if wake is None or tomorrow < wake.on:
                    wake = timers.Wake(tomorrow, f"status line: {tomorrow.isoformat()}")
            self._flush_attributes()
            if wake is None:
                await workflow.wait_condition(self._has_work)
            else:
                delay = start_of_london_day(wake.on) - workflow.now()
                if delay > timedelta(0):
                    with contextlib.suppress(TimeoutError):
                        await workflow.wait_condition(
                            self._has_work, timeout=delay, timeout_summary=wake.label
                        )
            while self._inbox:
                await self._process(self._inbox[0])
                self._inbox.popleft()
            await self._record_reports()
            await self._apply(timers.tick(self._state, self._ctx()))
            if not self._perf:
                workflow.set_current_details(self._status_line())
            else:
                self._unpublished = True  # the day may have moved on: the status line with it

    async def _operator_closure(self) -> None:
        """A cancellation request (the Web UI's button, ``WorkflowHandle.cancel()``): close the
        case as ``cancelled`` like any other ending, recorded against the operator."""
        actor = await self._canceller()
        decision = tr.cancel_by_operator(self._state, self._ctx(actor))
        if decision.events:
            await self._apply(decision)
        elif self._projected_version < self._state.version:
            await self._apply(decision, force=True)  # a change the cancellation interrupted
        # Free every slot no longer booked (idempotent): the meeting this closure cancelled,
        # and one a command cancelled just before the request interrupted it.
        for meeting in self._state.meetings:
            if meeting.status is MeetingStatus.CANCELLED:
                await self._release(meeting.id)

    async def _canceller(self) -> str:
        """Who asked: the identity on the cancellation request, read from the history."""
        try:
            info = workflow.info()
            identity: str = await workflow.execute_activity(
                CANCELLATION_REQUESTED_BY,
                CancellationQuery(workflow_id=info.workflow_id, run_id=info.run_id),
                result_type=str,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary="who requested the cancellation",
            )
        except ActivityError:
            identity = ""
        return f"operator ({identity})" if identity else tr.OPERATOR

    def _has_work(self) -> bool:
        return bool(self._inbox) or bool(self._reports)

    async def _record_reports(self) -> None:
        """Documents dispatched since last time: their numbers and any failed delivery."""
        while self._reports:
            report = self._reports.popleft()
            document = DocumentRef(
                number=report.number,
                kind=report.kind,
                issued_on=report.issued_on,
                sha256=report.sha256,
                failed=tuple(d.recipient for d in report.deliveries if d.status == "failed"),
                manual=tuple(d.recipient for d in report.deliveries if d.status == "manual"),
            )
            await self._apply(tr.record_document(self._state, document, self._today()))

    async def _process(self, pending: _Pending) -> None:
        command = pending.envelope.command
        ctx = self._ctx(pending.envelope.actor)
        try:
            tr.check(self._state, command, ctx.today, ctx.cal)
            if isinstance(command, BookMeeting):
                vetted = await self._vet_booking(command)
                decision = tr.decide(
                    self._state, command, ctx, mediator=vetted.mediator, venue=vetted.venue
                )
            else:
                meeting = self._state.current_meeting
                decision = tr.decide(self._state, command, ctx)
                if meeting is not None and decision.referral.current_meeting is None:
                    await self._release(meeting.id)
            await self._apply(decision)
            if self._patched(TICK_AFTER_COMMAND_PATCH):
                # A fact recorded late may make a deadline already past: act on it before
                # answering, so the caller sees the consequence (e.g. the deemed certificate).
                await self._apply(timers.tick(self._state, self._ctx()))
            pending.result = self._state
        except (tr.IllegalTransition, tr.InvalidCommand) as exc:
            pending.error = _error(exc)
        except ActivityError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == "BookingRejected":
                field = cause.details[0].get("field") if cause.details else None
                pending.error = ApplicationError(
                    cause.message, {"field": field}, type=INVALID, non_retryable=True
                )
            else:
                # The registry could not be reached (retries exhausted): the command is not
                # applied, the caller may try again, and the referral carries on.
                pending.error = ApplicationError(
                    "The mediator registry could not be checked just now; try again shortly.",
                    type=UNAVAILABLE,
                    non_retryable=True,
                )
        pending.done = True

    async def _vet_booking(self, command: BookMeeting) -> BookingVetted:
        referral = self._state
        organisations = tuple(p.party.organisation for p in referral.parties)
        venue = command.venue
        vetted: BookingVetted = await workflow.execute_activity(
            VET_AND_RESERVE_BOOKING,
            BookingRequest(
                referral_id=referral.id,
                meeting_id=f"meeting-{len(referral.meetings) + 1}",
                local_authority=referral.local_authority,
                organisations=organisations,
                mediator_id=command.mediator_id,
                venue_kind=venue.kind,
                venue_id=venue.venue_id if isinstance(venue, InPersonVenue) else None,
                video_link=None if isinstance(venue, InPersonVenue) else _str(venue.video_link),
                starts_at=command.starts_at,
                ends_at=command.ends_at,
            ),
            result_type=BookingVetted,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=BOOKING_RETRY,
            summary=f"vet mediator {command.mediator_id} and reserve the slot",
        )
        return vetted

    async def _release(self, meeting_id: str) -> None:
        await workflow.execute_activity(
            RELEASE_RESERVATION,
            Release(referral_id=self._state.id, meeting_id=meeting_id),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PROJECTION_RETRY,
            summary=f"release the mediator's slot for {meeting_id}",
        )

    async def _apply(self, decision: tr.Decision, *, force: bool = False) -> None:
        """Adopt the new state, project it (awaited), then start its effects."""
        if not decision.events and self._referral is not None and not force:
            return
        self._referral = decision.referral
        now = workflow.now()
        records = []
        for event in decision.events:
            self._event_seq += 1
            records.append(
                EventRecord(
                    seq=self._event_seq,
                    type=event.type,
                    on=event.on,
                    at=now,
                    actor=event.actor,
                    data=event.data,
                )
            )
        summary = f"project v{self._state.version}: {', '.join(e.type for e in decision.events)}"
        if self._perf:
            await self._project(tuple(records), now, summary)
        else:
            await workflow.execute_activity(
                RECORD_REFERRAL,
                Projection(referral=self._state, events=tuple(records), at=now),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PROJECTION_RETRY,
                summary=summary,
            )
        self._projected_version = self._state.version
        if self._perf:
            self._unpublished = True  # upserted once, before the workflow task ends
        else:
            self._publish()
        published = tuple(r for r in records if self._is_webhook(r))
        if published and not self._perf and self._patched(WEBHOOKS_PATCH):
            sent = published if self._edges else tuple(records)
            self._dispatches.append(asyncio.create_task(self._publish_events(sent)))
        for effect in decision.effects:
            self._effect_seq += 1
            self._dispatches.append(asyncio.create_task(self._run_effect(self._effect_seq, effect)))

    async def _project(self, records: tuple[EventRecord, ...], at: Any, summary: str) -> None:
        """perf-v1: the projection as a local activity that also sends its webhooks; those it
        could not deliver at once go to ``publish_events``, which retries them."""
        publish = tuple(r.seq for r in records if self._is_webhook(r))
        if publish:  # the sends it makes, visible in the Web UI like any other
            summary += f"; webhooks: {', '.join(r.type for r in records if r.seq in publish)}"
        projected: Projected = await workflow.execute_local_activity(
            PROJECT_REFERRAL,
            Projection(referral=self._state, events=records, at=at, publish=publish),
            result_type=Projected,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PROJECTION_RETRY,
            summary=summary,
        )
        if projected.unsent:
            unsent = set(projected.unsent)
            left = tuple(r for r in records if r.seq in unsent)
            self._dispatches.append(asyncio.create_task(self._publish_events(left)))

    def _is_webhook(self, record: EventRecord) -> bool:
        """Referral events that subscribed back offices receive (models/messages.py): under
        the lifecycle-edge rules also a cancelled meeting, a corrected breach, a reopening."""
        if record.type in STATUS_EVENTS_ALWAYS:
            return True
        return self._edges and record.type in STATUS_EVENTS_EDGES and is_status_event(record)

    async def _run_effect(self, seq: int, effect: tr.Effect) -> None:
        referral = self._state
        key = f"{workflow.info().workflow_id}:effect-{seq}"
        if not isinstance(effect, tr.Notify) and self._patched(DOCUMENTS_PATCH):
            await self._dispatch_document(key, referral, effect)
            return
        match effect:
            case tr.Notify():
                request = NotificationRequest(
                    key=key,
                    referral_id=referral.id,
                    template=effect.template,
                    recipients=effect.recipients,
                    data=dict(effect.data),
                )
            # Histories from before documents-v1 were told of documents by a notification,
            # sent to the family and (unlike the documents) each attendee or signatory as listed.
            case tr.DispatchCertificate():
                request = NotificationRequest(
                    key=key,
                    referral_id=referral.id,
                    template=f"certificate_{effect.certificate.kind.value}",
                    recipients=effect.recipients,
                    data={"number": effect.certificate.number},
                )
            case tr.DispatchInvitation():
                request = NotificationRequest(
                    key=key,
                    referral_id=referral.id,
                    template="meeting_invitation",
                    recipients=(FAMILY, *effect.meeting.attendees),
                    data={"meeting": effect.meeting.id},
                )
            case tr.DispatchAgreement():
                request = NotificationRequest(
                    key=key,
                    referral_id=referral.id,
                    template="agreement_signed",
                    recipients=(FAMILY, *effect.agreement.signatories),
                    data={},
                )
        await workflow.execute_activity(
            SEND_NOTIFICATION,
            request,
            result_type=int,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=self._send_heartbeat(),
            retry_policy=NOTIFY_RETRY,
            summary=f"notify {request.template} → {len(request.recipients)} recipient(s)",
        )

    async def _dispatch_document(self, key: str, referral: Referral, effect: tr.Effect) -> None:
        """Render, store and send a certificate, invitation or agreement (exactly once each)."""
        match effect:
            case tr.DispatchCertificate():
                request = DocumentRequest(
                    key=key,
                    referral_id=referral.id,
                    kind="certificate",
                    number=effect.certificate.number,
                    recipients=effect.recipients,
                )
            case tr.DispatchInvitation():
                request = DocumentRequest(
                    key=key,
                    referral_id=referral.id,
                    kind="invitation",
                    number=_number(PREFIX["invitation"]),
                    meeting_id=effect.meeting.id,
                    recipients=effect.recipients,
                )
            case tr.DispatchAgreement():
                request = DocumentRequest(
                    key=key,
                    referral_id=referral.id,
                    kind="agreement",
                    number=_number(PREFIX["agreement"]),
                    recipients=effect.recipients,
                )
            case _:
                raise AssertionError(f"not a document effect: {effect!r}")
        report: DispatchReport = await workflow.execute_activity(
            DISPATCH_DOCUMENT,
            request,
            result_type=DispatchReport,
            start_to_close_timeout=timedelta(minutes=3),
            heartbeat_timeout=self._send_heartbeat(),
            retry_policy=NOTIFY_RETRY,
            summary=f"dispatch {request.kind} {request.number} → {len(request.recipients)}",
        )
        self._reports.append(report)

    async def _publish_events(self, records: tuple[EventRecord, ...]) -> None:
        await workflow.execute_activity(
            PUBLISH_EVENTS,
            PublishRequest(referral_id=self._state.id, events=records),
            result_type=int,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=self._send_heartbeat(),
            retry_policy=NOTIFY_RETRY,
            summary=f"webhooks: {', '.join(sorted({r.type for r in records}))}",
        )

    def _publish(self) -> None:
        """Search attributes and the live status line: never personal data."""
        workflow.upsert_search_attributes(self._search_attributes())
        workflow.set_current_details(self._status_line())

    def _flush_attributes(self) -> None:
        """perf-v1: before the workflow waits, upsert the search attributes that changed since
        the last upsert (one command, so one history event, per workflow task at most) and
        refresh the status line."""
        if not (self._perf and self._unpublished):
            return
        self._unpublished = False
        changed = []
        for update in self._search_attributes():
            value = update.value
            stored = list(value) if isinstance(value, list | tuple) else value
            if self._attributes.get(update.key.name, _UNSET) != stored:
                self._attributes[update.key.name] = stored
                changed.append(update)
        if changed:
            workflow.upsert_search_attributes(changed)
        workflow.set_current_details(self._status_line())

    def _search_attributes(self) -> list[SearchAttributeUpdate[Any]]:
        referral = self._state
        due = next_due(referral)
        certificate = referral.certificate
        return [
            sa.REFERRAL_STATUS.value_set(referral.status.value),
            sa.REFERRAL_ROUTE.value_set(referral.route.value),
            sa.LOCAL_AUTHORITY.value_set(referral.local_authority),
            sa.CERTIFICATE_ISSUED.value_set(certificate is not None),
            sa.DEADLINE_BREACHED.value_set(any_breach(referral)),
            sa.DELIVERY_FAILED.value_set(referral.delivery_failed),
            sa.NEXT_DEADLINE.value_set(start_of_london_day(due[1]))
            if due
            else sa.NEXT_DEADLINE.value_unset(),
            sa.NEXT_DEADLINE_NAME.value_set(due[0]) if due else sa.NEXT_DEADLINE_NAME.value_unset(),
            *self._glance_attributes(referral),
        ]

    def _glance_attributes(self, referral: Referral) -> list[SearchAttributeUpdate[Any]]:
        """The Web UI at a glance: council name, breached deadlines and the latest breach,
        the council's own reference (never personal data)."""
        if not self._patched(GLANCE_PATCH):
            return []
        breached = [name for name, _since in breaches(referral)]
        latest = latest_breach(referral)
        council = self._start.local_authority_name
        reference = referral.request.external_reference
        return [
            sa.LOCAL_AUTHORITY_NAME.value_set(council)
            if council
            else sa.LOCAL_AUTHORITY_NAME.value_unset(),
            sa.BREACHED_DEADLINES.value_set(breached)
            if breached
            else sa.BREACHED_DEADLINES.value_unset(),
            sa.LATEST_BREACH.value_set(start_of_london_day(latest))
            if latest
            else sa.LATEST_BREACH.value_unset(),
            sa.EXTERNAL_REFERENCE.value_set(reference)
            if reference
            else sa.EXTERNAL_REFERENCE.value_unset(),
        ]

    def _status_line(self) -> str:
        """The live status line (current details: not part of the history)."""
        return status_line(self._state, self._today(), self._start.local_authority_name)

    # ------------------------------------------------------------------ helpers

    def _patched(self, patch: str) -> bool:
        """An earlier behaviour change: always taken under perf-v1, else as history says."""
        return self._perf or workflow.patched(patch)

    def _send_heartbeat(self) -> timedelta | None:
        """Histories from before the patch scheduled their sends without a heartbeat timeout."""
        return SEND_HEARTBEAT if self._patched(SEND_HEARTBEAT_PATCH) else None

    @property
    def _state(self) -> Referral:
        assert self._referral is not None
        return self._referral

    @property
    def _calendar(self) -> HolidayCalendar:
        assert self._cal is not None
        return self._cal

    def _today(self) -> date:
        return london_date(workflow.now())

    def _ctx(self, actor: str = tr.SYSTEM) -> tr.Context:
        return tr.Context(
            today=self._today(),
            cal=self._calendar,
            policy=self._start.policy,
            actor=actor,
            new_number=_number,
            rules=PAGES_RULES if self._pages else EDGE_RULES if self._edges else LEGACY_RULES,
        )

    @staticmethod
    def _decision_date(start: StartReferral) -> date:
        request = start.request
        if isinstance(request, MediationReferralCreate):
            return request.decision.decision_date
        return start.received_on

    def _validate(self, envelope: CommandEnvelope) -> None:
        if self._referral is None or self._cal is None:
            return  # not opened yet: the handler waits, and checks in order
        try:
            tr.check(self._referral, envelope.command, self._today(), self._cal)
        except (tr.IllegalTransition, tr.InvalidCommand) as exc:
            raise _error(exc) from exc

    async def _submit(self, envelope: CommandEnvelope) -> Referral:
        await workflow.wait_condition(lambda: self._referral is not None)
        pending = _Pending(envelope)
        self._inbox.append(pending)
        await workflow.wait_condition(lambda: pending.done)
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    # ------------------------------------------------------------------ queries & updates

    @workflow.query(name=REFERRAL_QUERY)
    def referral(self) -> Referral | None:
        return self._referral

    @workflow.update(name=CREATED_UPDATE)
    async def created(self, created: Created) -> Referral:
        await workflow.wait_condition(lambda: self._projected_version >= 0)
        if created.request_hash != self._start.request_hash:
            raise ApplicationError(
                "Idempotency-Key was already used with a different request body",
                type=IDEMPOTENCY_MISMATCH,
                non_retryable=True,
            )
        return self._state

    @workflow.update(name=ACTION_UPDATE)
    async def action(self, envelope: CommandEnvelope) -> Referral:
        return await self._submit(envelope)

    @action.validator
    def _v_action(self, envelope: CommandEnvelope) -> None:
        self._validate(envelope)

    @workflow.update(name=INFORMATION_SESSION_UPDATE)
    async def information_session(self, envelope: CommandEnvelope) -> Referral:
        return await self._submit(envelope)

    @information_session.validator
    def _v_information_session(self, envelope: CommandEnvelope) -> None:
        self._validate(envelope)

    @workflow.update(name=DECLINE_MEDIATION_UPDATE)
    async def decline_mediation(self, envelope: CommandEnvelope) -> Referral:
        return await self._submit(envelope)

    @decline_mediation.validator
    def _v_decline_mediation(self, envelope: CommandEnvelope) -> None:
        self._validate(envelope)

    @workflow.update(name=REQUEST_MEDIATION_UPDATE)
    async def request_mediation(self, envelope: CommandEnvelope) -> Referral:
        return await self._submit(envelope)

    @request_mediation.validator
    def _v_request_mediation(self, envelope: CommandEnvelope) -> None:
        self._validate(envelope)

    @workflow.update(name=LA_UNABLE_TO_ARRANGE_UPDATE)
    async def la_unable_to_arrange(self, envelope: CommandEnvelope) -> Referral:
        return await self._submit(envelope)

    @la_unable_to_arrange.validator
    def _v_la_unable_to_arrange(self, envelope: CommandEnvelope) -> None:
        self._validate(envelope)

    @workflow.update(name=PARTY_RESPONSE_UPDATE)
    async def party_response(self, envelope: CommandEnvelope) -> Referral:
        return await self._submit(envelope)

    @party_response.validator
    def _v_party_response(self, envelope: CommandEnvelope) -> None:
        self._validate(envelope)

    @workflow.update(name=BOOK_MEETING_UPDATE)
    async def book_meeting(self, envelope: CommandEnvelope) -> Referral:
        return await self._submit(envelope)

    @book_meeting.validator
    def _v_book_meeting(self, envelope: CommandEnvelope) -> None:
        self._validate(envelope)

    @workflow.update(name=CANCEL_MEETING_UPDATE)
    async def cancel_meeting(self, envelope: CommandEnvelope) -> Referral:
        return await self._submit(envelope)

    @cancel_meeting.validator
    def _v_cancel_meeting(self, envelope: CommandEnvelope) -> None:
        self._validate(envelope)

    @workflow.update(name=RECORD_MEETING_UPDATE)
    async def record_meeting(self, envelope: CommandEnvelope) -> Referral:
        return await self._submit(envelope)

    @record_meeting.validator
    def _v_record_meeting(self, envelope: CommandEnvelope) -> None:
        self._validate(envelope)

    @workflow.update(name=SIGN_AGREEMENT_UPDATE)
    async def sign_agreement(self, envelope: CommandEnvelope) -> Referral:
        return await self._submit(envelope)

    @sign_agreement.validator
    def _v_sign_agreement(self, envelope: CommandEnvelope) -> None:
        self._validate(envelope)

    @workflow.update(name=COMPLETE_ACTION_UPDATE)
    async def complete_action(self, envelope: CommandEnvelope) -> Referral:
        return await self._submit(envelope)

    @complete_action.validator
    def _v_complete_action(self, envelope: CommandEnvelope) -> None:
        self._validate(envelope)

    @workflow.update(name=WITHDRAW_UPDATE)
    async def withdraw(self, envelope: CommandEnvelope) -> Referral:
        return await self._submit(envelope)

    @withdraw.validator
    def _v_withdraw(self, envelope: CommandEnvelope) -> None:
        self._validate(envelope)

    @workflow.update(name=MEETING_REPLY_UPDATE)
    async def meeting_reply(self, envelope: CommandEnvelope) -> Referral:
        return await self._submit(envelope)

    @meeting_reply.validator
    def _v_meeting_reply(self, envelope: CommandEnvelope) -> None:
        self._validate(envelope)


_UNSET = object()


def _number(prefix: str) -> str:
    """A document number (its format: the domain's), drawn where it always was, from
    ``workflow.uuid4()``: deterministic on replay, and the same command sequence."""
    return document_number(prefix, workflow.uuid4().hex)


def _str(value: object) -> str | None:
    return None if value is None else str(value)
