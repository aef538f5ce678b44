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

from fastapi import APIRouter, Body, Path, Request
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import references
from api.auth import require_local_authority
from api.bounds import check_dates
from api.deps import SettingsDep, TemporalDep
from api.errors import Problem, validation_problem
from api.idempotency import IdempotencyKey, body_hash, idempotent, key_digest, reused
from api.schemas import ReferralRead, referral_read
from api.temporal import bounded
from models.bank_holidays import england_and_wales_calendar
from models.domain import transitions as tr
from models.domain.clock import london_date
from models.domain.commands import COMMAND_MODELS
from models.domain.referral import MediationReferralCreate, Referral, ReferralCreate
from models.domain.summary import council_label, static_summary
from models.settings import Settings
from models.tables import LocalAuthorityRow, ProviderRow, ReferralRow
from workflows import search_attributes as sa
from workflows.client import workflow_id
from workflows.messages import CommandEnvelope, Created, StartReferral
from workflows.referral import (
    IDEMPOTENCY_MISMATCH,
    ILLEGAL,
    INVALID,
    UNAVAILABLE,
    ReferralWorkflow,
)

router = APIRouter(prefix="/referrals", tags=["referrals"])

ID_NAMESPACE = uuid.UUID("5b0f6c53-8f57-4d0e-9c55-3e1f0a0f6a11")
ReferralId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="The referral's id.")]

# A route reached without a key (none is, today: api/auth.py refuses them) acts as this.
DEFAULT_CLIENT = "api"


def client_id(request: Request) -> str:
    """The caller's identity: its API key's id (never its name, which need not be unique)."""
    value = getattr(request.state, "client_id", None)
    return value if isinstance(value, str) else DEFAULT_CLIENT


def policy_for(settings: Settings, provider: ProviderRow) -> tr.Policy:
    return tr.Policy(
        referral_action_working_days=provider.referral_action_working_days,
        dr_response_working_days=settings.dr_response_working_days,
        dr_reminder_working_days=settings.dr_reminder_working_days,
        action_reminder_working_days=settings.action_reminder_working_days,
    )


def _problem_from_update(exc: WorkflowUpdateFailedError) -> Problem:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details else {}
        if cause.type == ILLEGAL:
            return Problem(
                409,
                "Command not allowed now",
                cause.message,
                type_="illegal-transition",
                current_status=details.get("status"),
                allowed_commands=[c.replace("_", "-") for c in details.get("allowed", [])],
            )
        if cause.type == INVALID:
            field = details.get("field") or "body"
            return validation_problem([{"field": f"body.{field}", "message": cause.message}])
        if cause.type == UNAVAILABLE:
            return Problem(
                503, "Temporarily unavailable", cause.message, headers={"Retry-After": "5"}
            )
        if cause.type == IDEMPOTENCY_MISMATCH:
            return reused()
    return Problem(500, "Command failed", "The referral could not process the command.")


async def _load(request: Request, referral_id: str) -> ReferralRow | None:
    async with request.state.sessionmaker() as session:
        row: ReferralRow | None = await session.get(ReferralRow, referral_id)
        return row


async def _exists(request: Request, referral_id: str) -> bool:
    """Whether the referral is known, reading the primary key only (not the snapshot)."""
    async with request.state.sessionmaker() as session:
        query = select(col(ReferralRow.id)).where(col(ReferralRow.id) == referral_id)
        found = await session.scalar(query)
        return found is not None


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
    idempotency_key: IdempotencyKey = None,
) -> Any:
    require_local_authority(request, body.local_authority)
    check_dates(body)
    caller = client_id(request)
    payload = body.model_dump(mode="json", exclude_none=True)
    request_hash = body_hash(payload)

    async def produce() -> tuple[int, dict[str, Any]]:
        council, provider = await council_provider(request, body.local_authority)
        reference = body.external_reference

        async def reserve(referral_id: str) -> None:
            if reference is not None:
                await references.claim(
                    request, temporal, body.local_authority, reference, referral_id
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
        request.state.sessionmaker,
        client_id=caller,
        key=idempotency_key,
        method="POST",
        path=request.url.path,
        request_hash=request_hash,
        produce=produce,
    )


async def council_provider(request: Request, code: str) -> tuple[LocalAuthorityRow, ProviderRow]:
    """The council and its mediation provider; an unknown or inactive council is a 422."""
    maker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    async with maker() as session:
        council = await session.get(LocalAuthorityRow, code)
        provider = await session.get(ProviderRow, council.provider_id) if council else None
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
        tr.open_referral(
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
                "created",
                Created(request_hash=request_hash),
                start_workflow_operation=operation,
                result_type=Referral,
                rpc_timeout=rpc_timeout,
            )
        except WorkflowUpdateFailedError as exc:
            raise _problem_from_update(exc) from exc
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
async def get_referral(request: Request, referral_id: ReferralId) -> ReferralRead:
    row = await _load(request, referral_id)
    if row is None:
        raise Problem(404, "Not found", f"No referral {referral_id}.")
    return referral_read(Referral.model_validate(row.snapshot))


async def send_command(
    request: Request,
    temporal: Client,
    referral_id: str,
    update_name: str,
    command: Any,
    idempotency_key: str | None,
    *,
    caller: str | None = None,
    path: str | None = None,
) -> Any:
    """Send ``command`` as the workflow update ``update_name``, once per idempotency key.

    ``caller`` (default: the API key's id) is the recorded actor and owns the key; the link
    pages pass the party (``api/routes/pages.py``) and a ``path`` without the link's token."""
    caller = caller or client_id(request)
    payload = command.model_dump(mode="json", exclude_none=True)
    request_hash = body_hash(payload)

    async def produce() -> tuple[int, dict[str, Any]]:
        if not await _exists(request, referral_id):
            raise Problem(404, "Not found", f"No referral {referral_id}.")
        handle = temporal.get_workflow_handle(workflow_id(referral_id))
        update_id = (
            f"{update_name}-{key_digest(caller, idempotency_key)[:32]}" if idempotency_key else None
        )
        settings: Settings = request.state.settings
        try:
            async with bounded(settings.temporal_update_timeout_seconds) as rpc_timeout:
                referral: Referral = await handle.execute_update(
                    update_name,
                    CommandEnvelope(actor=caller, command=command),
                    id=update_id,
                    result_type=Referral,
                    rpc_timeout=rpc_timeout,
                )
        except WorkflowUpdateFailedError as exc:
            raise _problem_from_update(exc) from exc
        except RPCError as exc:
            closed = exc.status is RPCStatusCode.NOT_FOUND
            row = await _load(request, referral_id) if closed else None
            if row is not None:
                snapshot = Referral.model_validate(row.snapshot)
                raise Problem(
                    409,
                    "Command not allowed now",
                    f"The referral is {snapshot.status.value}: nothing more can happen to it.",
                    type_="illegal-transition",
                    current_status=snapshot.status.value,
                    allowed_commands=[],
                ) from exc
            raise
        return 200, referral_read(referral).model_dump(mode="json")

    return await idempotent(
        request.state.sessionmaker,
        client_id=caller,
        key=idempotency_key,
        method="POST",
        path=path or request.url.path,
        request_hash=request_hash,
        produce=produce,
    )


def _register_command(path: str, model: type[Any]) -> None:
    update_name = path.replace("-", "_")
    doc = (model.__doc__ or "").strip()
    has_required = any(f.is_required() for f in model.model_fields.values())

    async def endpoint(
        request: Request,
        referral_id: ReferralId,
        temporal: TemporalDep,
        idempotency_key: IdempotencyKey = None,
        body: Any = None,
    ) -> Any:
        if body is None and has_required:  # no body at all: 422, not model() failing (500)
            raise validation_problem([{"field": "body", "message": "Field required"}])
        command = body if body is not None else model()
        check_dates(command)
        return await send_command(
            request, temporal, referral_id, update_name, command, idempotency_key
        )

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


for _path, _model in COMMAND_MODELS.items():
    _register_command(_path, _model)
