"""Commands to a referral: each path's body and workflow update, and the one way a command
is sent (``send_command``), shared by the REST routes (``routes/referrals.py``) and the link
pages (``routes/pages.py``): same model, same validators, same update, once per idempotency
key, with the caller or the party as the recorded actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Problem, validation_problem
from api.idempotency import body_hash, idempotent, key_digest, reused
from api.schemas import referral_read
from api.temporal import bounded
from models.domain import commands
from models.domain.base import Strict
from models.domain.referral import Referral
from models.messages import (
    ACTION_UPDATE,
    BOOK_MEETING_UPDATE,
    CANCEL_MEETING_UPDATE,
    COMPLETE_ACTION_UPDATE,
    DECLINE_MEDIATION_UPDATE,
    IDEMPOTENCY_MISMATCH,
    ILLEGAL,
    INFORMATION_SESSION_UPDATE,
    INVALID,
    LA_UNABLE_TO_ARRANGE_UPDATE,
    MEETING_REPLY_UPDATE,
    PARTY_RESPONSE_UPDATE,
    RECORD_MEETING_UPDATE,
    REQUEST_MEDIATION_UPDATE,
    SIGN_AGREEMENT_UPDATE,
    UNAVAILABLE,
    WITHDRAW_UPDATE,
    CommandEnvelope,
    workflow_id,
)
from models.settings import Settings
from models.store.tables import ReferralRow

#: ``POST /v1/referrals/{id}/<path>``: each command's path, its body and the workflow update
#: that carries it (update names are the commands' tags, ``models/messages.py``).
COMMAND_PATHS: dict[str, tuple[type[Strict], str]] = {
    "action": (commands.Action, ACTION_UPDATE),
    "information-session": (commands.InformationSession, INFORMATION_SESSION_UPDATE),
    "decline-mediation": (commands.DeclineMediation, DECLINE_MEDIATION_UPDATE),
    "request-mediation": (commands.RequestMediation, REQUEST_MEDIATION_UPDATE),
    "la-unable-to-arrange": (commands.LaUnableToArrange, LA_UNABLE_TO_ARRANGE_UPDATE),
    "party-response": (commands.PartyResponse, PARTY_RESPONSE_UPDATE),
    "book-meeting": (commands.BookMeeting, BOOK_MEETING_UPDATE),
    "cancel-meeting": (commands.CancelMeeting, CANCEL_MEETING_UPDATE),
    "record-meeting": (commands.RecordMeeting, RECORD_MEETING_UPDATE),
    "sign-agreement": (commands.SignAgreement, SIGN_AGREEMENT_UPDATE),
    "complete-action": (commands.CompleteAction, COMPLETE_ACTION_UPDATE),
    "withdraw": (commands.Withdraw, WITHDRAW_UPDATE),
    "meeting-reply": (commands.MeetingReply, MEETING_REPLY_UPDATE),
}


def problem_from_update(exc: WorkflowUpdateFailedError) -> Problem:
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


async def load_row(maker: async_sessionmaker[AsyncSession], referral_id: str) -> ReferralRow | None:
    async with maker() as session:
        row: ReferralRow | None = await session.get(ReferralRow, referral_id)
        return row


@dataclass(frozen=True)
class CommandContext:
    """What a command needs from its request (every part through ``api/deps.py``)."""

    path: str
    temporal: Client
    settings: Settings
    maker: async_sessionmaker[AsyncSession]
    caller: str


async def send_command(
    ctx: CommandContext,
    referral_id: str,
    update_name: str,
    command: Any,
    idempotency_key: str | None,
) -> Any:
    """Send ``command`` as the workflow update ``update_name``, once per idempotency key.

    ``ctx.caller`` is the recorded actor and owns the key: the API key's id, or the party
    when a link page sends the command (``api/routes/pages.py``, whose ``ctx.path`` leaves
    out the link's token)."""
    caller, maker, settings = ctx.caller, ctx.maker, ctx.settings
    payload = command.model_dump(mode="json", exclude_none=True)
    request_hash = body_hash(payload)

    async def produce() -> tuple[int, dict[str, Any]]:
        # Straight to the workflow: an unknown referral is Temporal's NOT_FOUND (below), so a
        # command costs no database read before it (the read model is consulted on failure).
        handle = ctx.temporal.get_workflow_handle(workflow_id(referral_id))
        update_id = (
            f"{update_name}-{key_digest(caller, idempotency_key)[:32]}" if idempotency_key else None
        )
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
            raise problem_from_update(exc) from exc
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            row = await load_row(maker, referral_id)
            if row is None:  # never created (or erased after its retention period)
                raise Problem(404, "Not found", f"No referral {referral_id}.") from exc
            snapshot = Referral.model_validate(row.snapshot)
            raise Problem(
                409,
                "Command not allowed now",
                f"The referral is {snapshot.status.value}: nothing more can happen to it.",
                type_="illegal-transition",
                current_status=snapshot.status.value,
                allowed_commands=[],
            ) from exc
        return 200, referral_read(referral).model_dump(mode="json")

    return await idempotent(
        maker,
        client_id=caller,
        key=idempotency_key,
        method="POST",
        path=ctx.path,
        request_hash=request_hash,
        produce=produce,
    )
