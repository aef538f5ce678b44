"""The inputs and results of the dispatch activities, on their own.

Light on purpose (pydantic only): the workflow (and through it the API) imports these without
loading the PDF, mail or webhook libraries that ``activities/documents.py`` and
``activities/notify.py`` need. Both modules re-export them.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from activities.records import EventRecord


class NotificationRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    referral_id: str
    template: str
    recipients: tuple[str, ...]
    data: dict[str, str] = {}


class PublishRequest(BaseModel):
    """Referral events as projected (``seq`` makes each webhook's id stable)."""

    model_config = ConfigDict(frozen=True)

    referral_id: str
    events: tuple[EventRecord, ...]


class DocumentRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str  # stable per effect: "<workflow_id>:effect-<n>"
    referral_id: str
    kind: Literal["certificate", "agreement", "invitation"]
    number: str  # the document number (for certificates: Certificate.number)
    meeting_id: str | None = None  # for invitations: which Meeting in referral.meetings
    recipients: tuple[str, ...]  # "family", "supporter", "mediator", or party ids


class DeliveryOutcome(BaseModel):
    """What happened to one delivery (a recipient by email, or a webhook subscription)."""

    model_config = ConfigDict(frozen=True)

    recipient: str
    channel: str  # email, webhook, post, phone or none
    status: Literal["sent", "failed", "manual"]
    detail: str | None = None


class DispatchReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: str
    kind: str
    sha256: str
    issued_on: date
    deliveries: tuple[DeliveryOutcome, ...]
