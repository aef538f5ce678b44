"""``/v1/referrals``: start referrals, send commands, read them.

Routes are thin: validate, turn the body into a workflow start (update-with-start) or an
update, and answer with the referral's new state. A rejected update is a 409 naming the
state and what is allowed; a malformed command is a 422 naming the field.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import references
from api.auth import require_local_authority
from api.bounds import check_dates
from api.commands import (
    COMMAND_PATHS,
    CommandContext,
    load_row,
    problem_from_update,
    send_command,
)
from api.deps import CallerDep, ReferralId, SessionmakerDep, SettingsDep, TemporalDep
from api.errors import Problem, validation_problem
from api.idempotency import IdempotencyKey, body_hash, idempotent, key_digest, reused
from api.schemas import ReferralRead, referral_read
from api.temporal import bounded
from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain import intake
from models.domain import transitions as tr
from models.domain.clock import london_date
from models.domain.referral import MediationReferralCreate, Referral, ReferralCreate
from models.domain.summary import council_label, static_summary
from models.messages import (
    CREATED_UPDATE,
    Created,
    StartReferral,
    workflow_id,
)
from models.settings import Settings
from models.store.tables import LocalAuthorityRow, ProviderRow
from workflows import search_attributes as sa
from workflows.referral import ReferralWorkflow

router = APIRouter(prefix="/referrals", tags=["referrals"])

ID_NAMESPACE = uuid.UUID("5b0f6c53-8f57-4d0e-9c55-3e1f0a0f6a11")


def policy_for(settings: Settings, provider: ProviderRow) -> tr.Policy:
    return tr.Policy(
        referral_action_working_days=provider.referral_action_working_days,
        dr_response_working_days=settings.dr_response_working_days,
        dr_reminder_working_days=settings.dr_reminder_working_days,
        action_reminder_working_days=settings.action_reminder_working_days,
    )


@router.post(
    "",
    status_code=201,
    response_model=ReferralRead,
    summary="Create a referral (Mediation or Disagreement Resolution)",
    description=(
        "Opens the referral and starts its workflow; the answer is the referral as it now "
        "stands.\n\n"
        "**Two kinds of clock.** Statutory deadlines (DL-01…DL-13) run from their legal "
        "trigger dates, which may be in the past: a referral entered late (`received_on` "
        "weeks ago) can be in breach the moment it opens, and what is already due happens at "
        "once (a deemed certificate, say). Clocks the service sets to give someone time to "
        "act run from when that person is actually asked: a Disagreement Resolution party "
        "has 10 working days from the day the service contacts them (today, for a late "
        "entry) or from `parties_contacted_on` if you asked them already; reminders and the "
        "'reply by' dates in notices count from there. No notice asks anyone to act by a date "
        "already past: a late notice says what is overdue and what happens next.\n\n"
        "**Facts already known.** A referral migrated from another system can carry `facts` "
        "(each a command with its `on` date): they are applied in date order by exactly the "
        "rules of the commands, so the referral starts in its true state in one call; what "
        "they trigger (a certificate, a reminder) happens now. A fact not possible at its "
        "point is a 422 naming `body.facts.<n>`.\n\n"
        "**Corrections.** A breach the clock decided because nothing was recorded in time is "
        "re-decided when the fact arrives dated on or before the due day (the deadline is "
        "then `met`, the timeline says so and a `deadline.met` webhook with `corrected: true` "
        "follows the earlier `deadline.breached`). A Disagreement Resolution closed because "
        "nobody answered (`outcome: no_response`) reopens if an answer given within the "
        "window is recorded by `closure_correctable_until` (30 days). A certificate once "
        "issued is never withdrawn."
    ),
    responses={
        409: {"description": "idempotency-key-in-progress: the same key is still being answered."},
        422: {"description": "Invalid referral (problem+json naming each field)."},
        503: {"description": "temporal-unavailable: try again (Retry-After), same key."},
    },
)
async def create_referral(
    request: Request,
    body: Annotated[ReferralCreate, Body()],
    temporal: TemporalDep,
    settings: SettingsDep,
    maker: SessionmakerDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    require_local_authority(request, body.local_authority)
    check_dates(body)
    payload = body.model_dump(mode="json", exclude_none=True)
    request_hash = body_hash(payload)

    async def produce() -> tuple[int, dict[str, Any]]:
        council, provider = await council_provider(maker, body.local_authority)
        reference = body.external_reference

        async def reserve(referral_id: str) -> None:
            if reference is not None:
                await references.claim(
                    maker,
                    temporal,
                    settings.temporal_rpc_timeout_seconds,
                    body.local_authority,
                    reference,
                    referral_id,
                )

        referral = await start_referral(
            temporal,
            settings,
            body,
            provider,
            caller=caller,
            key=idempotency_key,
            request_hash=request_hash,
            reserve=reserve,
            council_name=council.name,
        )
        return 201, referral_read(referral).model_dump(mode="json")

    return await idempotent(
        maker,
        client_id=caller,
        key=idempotency_key,
        method="POST",
        path=request.url.path,
        request_hash=request_hash,
        produce=produce,
    )


async def council_provider(
    maker: async_sessionmaker[AsyncSession], code: str
) -> tuple[LocalAuthorityRow, ProviderRow]:
    """The council and its mediation provider; an unknown or inactive council is a 422."""
    both = select(LocalAuthorityRow, ProviderRow).join(
        ProviderRow, col(ProviderRow.id) == col(LocalAuthorityRow.provider_id)
    )
    async with maker() as session:  # one round trip for the two rows
        found = (await session.exec(both.where(col(LocalAuthorityRow.code) == code))).first()
    council, provider = found if found is not None else (None, None)
    if council is None or not council.active or provider is None:
        raise validation_problem(
            [
                {
                    "field": "body.local_authority",
                    "message": f"unknown local authority '{code}' (see GET /v1/local-authorities)",
                }
            ]
        )
    return council, provider


async def start_referral(
    temporal: Client,
    settings: Settings,
    body: Any,
    provider: ProviderRow,
    *,
    caller: str,
    key: str | None,
    request_hash: str,
    reserve: Callable[[str], Awaitable[None]] | None = None,
    council_name: str | None = None,
) -> Referral:
    now = datetime.now(UTC)
    received_on = body.received_on or london_date(now)
    referral_id = str(uuid.uuid5(ID_NAMESPACE, key_digest(caller, key)) if key else uuid.uuid4())
    policy = policy_for(settings, provider)
    # Dry run of the workflow's own opening step: every intake rule answers here as a 422.
    # The years the workflow loads too: from before the decision to a few years after today
    # (a late entry's service clocks run from today, not from received_on).
    decided = body.decision.decision_date if isinstance(body, MediationReferralCreate) else None
    earliest = min(received_on, decided or received_on)
    cal = england_and_wales_calendar(earliest.year - 1, london_date(now).year + 4)
    try:
        intake.open_referral(
            referral_id,
            body,
            received_on=received_on,
            created_at=now,
            ctx=tr.Context(today=london_date(now), cal=cal, policy=policy, actor=caller),
        )
    except tr.InvalidCommand as exc:
        field = exc.field or "body"
        if field == "route":
            raise Problem(
                422,
                "This dispute belongs to Mediation",
                exc.message,
                type_="use-mediation",
                errors=[{"field": "body.route", "message": exc.message}],
                mediation_referral={
                    "method": "POST",
                    "path": "/v1/referrals",
                    "route": "mediation",
                    "hint": "send route=mediation with the decision; set linked_referral_id to "
                    "link it to this request's reference if you keep one",
                },
            ) from exc
        raise validation_problem([{"field": f"body.{field}", "message": exc.message}]) from exc
    if reserve is not None:  # the council's own reference: unique per council (409)
        await reserve(referral_id)
    start = StartReferral(
        referral_id=referral_id,
        request=body,
        received_on=received_on,
        created_at=now,
        actor=caller,
        request_hash=request_hash,
        policy=policy,
        local_authority_name=council_name,
    )
    operation = start_operation(start, settings.task_queue)
    async with bounded(settings.temporal_update_timeout_seconds) as rpc_timeout:
        try:
            referral: Referral = await temporal.execute_update_with_start_workflow(
                CREATED_UPDATE,
                Created(request_hash=request_hash),
                start_workflow_operation=operation,
                result_type=Referral,
                rpc_timeout=rpc_timeout,
            )
        except WorkflowUpdateFailedError as exc:
            raise problem_from_update(exc) from exc
        except (RPCError, WorkflowAlreadyStartedError) as exc:
            if isinstance(exc, RPCError) and exc.status is not RPCStatusCode.ALREADY_EXISTS:
                raise
            # This key's referral has already closed: answer with what it became, if this is
            # the same request (its id derives from this API key's id and Idempotency-Key).
            existing = await _existing_referral(temporal, settings, referral_id)
            if existing is None:
                raise unavailable_referral() from exc
            if body_hash(existing.request.model_dump(mode="json", exclude_none=True)) != (
                request_hash
            ):
                raise reused() from exc
            return existing
    return referral


def unavailable_referral() -> Problem:
    return Problem(
        503,
        "Temporarily unavailable",
        "The referral made earlier with this Idempotency-Key cannot be read just now.",
        type_="temporal-unavailable",
        headers={"Retry-After": "5"},
    )


def start_operation(start: StartReferral, task_queue: str) -> WithStartWorkflowOperation[Any, Any]:
    """How a referral's workflow is started (with the ``created`` update): its id, the
    duplicate policies that make a retried POST find the same referral, and what the Web UI
    shows before the first workflow task (summary, details, search attributes)."""
    body = start.request
    reference = body.external_reference
    return WithStartWorkflowOperation(
        ReferralWorkflow.run,
        start,
        id=workflow_id(start.referral_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        static_summary=static_summary(
            start.referral_id, body.route, body.local_authority, start.local_authority_name
        ),
        static_details=(
            f"Route: {body.route.value}\n"
            f"Local authority: {council_label(body.local_authority, start.local_authority_name)}\n"
            + (f"Council's reference: {reference}\n" if reference else "")
            + f"Received: {start.received_on.isoformat()}\nReferral id: {start.referral_id}"
        ),
        search_attributes=sa.initial(
            body.route.value, body.local_authority, start.local_authority_name, reference
        ),
    )


async def _existing_referral(
    temporal: Client, settings: Settings, referral_id: str
) -> Referral | None:
    handle = temporal.get_workflow_handle(workflow_id(referral_id))
    try:
        async with bounded(settings.temporal_rpc_timeout_seconds) as rpc_timeout:
            result: Referral | None = await handle.query(
                ReferralWorkflow.referral, rpc_timeout=rpc_timeout
            )
            return result
    except RPCError:
        return None


@router.get(
    "/{referral_id}",
    response_model=ReferralRead,
    summary="The whole referral: status, parties, meetings, deadlines, certificates",
    responses={404: {"description": "Unknown referral."}},
)
async def get_referral(maker: SessionmakerDep, referral_id: ReferralId) -> ReferralRead:
    row = await load_row(maker, referral_id)
    if row is None:
        raise Problem(404, "Not found", f"No referral {referral_id}.")
    return referral_read(Referral.model_validate(row.snapshot))


def _register_command(path: str, model: type[Any], update_name: str) -> None:
    doc = (model.__doc__ or "").strip()
    has_required = any(f.is_required() for f in model.model_fields.values())

    async def endpoint(
        request: Request,
        referral_id: ReferralId,
        temporal: TemporalDep,
        settings: SettingsDep,
        maker: SessionmakerDep,
        caller: CallerDep,
        idempotency_key: IdempotencyKey = None,
        body: Any = None,
    ) -> Any:
        if body is None and has_required:  # no body at all: 422, not model() failing (500)
            raise validation_problem([{"field": "body", "message": "Field required"}])
        command = body if body is not None else model()
        check_dates(command)
        ctx = CommandContext(request.url.path, temporal, settings, maker, caller)
        return await send_command(ctx, referral_id, update_name, command, idempotency_key)

    endpoint.__annotations__["body"] = (
        Annotated[model, Body()] if has_required else Annotated[model | None, Body()]
    )
    router.add_api_route(
        f"/{{referral_id}}/{path}",
        endpoint,
        methods=["POST"],
        response_model=ReferralRead,
        summary=doc.splitlines()[0] if doc else path,
        description=doc,
        name=f"command_{update_name}",
        responses={
            404: {"description": "Unknown referral."},
            409: {
                "description": "illegal-transition: not legal in the referral's current state "
                "(says what is); idempotency-key-in-progress: the same key is still being "
                "answered."
            },
            422: {"description": "Invalid command (problem+json naming each field)."},
            503: {"description": "temporal-unavailable: try again (Retry-After), same key."},
        },
    )


for _path, (_model, _update) in COMMAND_PATHS.items():
    _register_command(_path, _model, _update)
