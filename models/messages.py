"""The workflow's own messages: its input, the command envelope and its answers.

A module of their own, imported through the sandbox (``imports_passed_through``): the
workflow module is executed afresh for every new workflow instance, and building these
pydantic models (the input embeds the whole referral request schema) there cost about 6 % of
the worker's CPU under load (docs/PERFORMANCE.md). Pure: no clock, environment or I/O.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from models.domain import transitions as tr
from models.domain.commands import Command
from models.domain.referral import DisagreementResolutionReferralCreate, MediationReferralCreate


class StartReferral(BaseModel):
    """Workflow input. ``request`` holds personal data: encrypted by the payload codec."""

    model_config = ConfigDict(frozen=True)

    referral_id: str
    request: MediationReferralCreate | DisagreementResolutionReferralCreate = Field(
        discriminator="route"
    )
    received_on: date
    created_at: datetime
    actor: str
    request_hash: str
    policy: tr.Policy = tr.Policy()
    local_authority_name: str | None = Field(
        default=None, description="The council's name from the registry, for the Web UI."
    )


class CommandEnvelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    actor: str
    command: Command


class Created(BaseModel):
    """Sent with the start (update-with-start): answers once the referral is projected."""

    model_config = ConfigDict(frozen=True)

    request_hash: str


class Closed(BaseModel):
    model_config = ConfigDict(frozen=True)

    referral_id: str
    outcome: str | None
    closed_on: date | None
