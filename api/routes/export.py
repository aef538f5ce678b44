"""``GET /v1/referrals/{id}/export``: everything the service holds about one referral.

For a subject access request (UK GDPR Art. 15): the referral as last projected (with the
personal data the back office sent), its audit timeline, the notifications queued, every
document issued (metadata; the PDFs themselves from ``GET /v1/documents/{number}``), every
delivery, the meeting slots reserved and, once the retention period has passed, the record
of the erasure. Scope ``admin``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import SQLModel, col, select

from api.auth import require_local_authority
from api.deps import ReferralId, SessionDep
from api.errors import Problem
from models.store.auth_tables import ErasureRow
from models.store.document_tables import DeliveryRow, DocumentRow
from models.store.tables import (
    MeetingReservationRow,
    NotificationRow,
    ReferralEventRow,
    ReferralRow,
)

router = APIRouter(prefix="/referrals", tags=["referrals"])

TEMPORAL_NOTE = (
    "The referral's workflow history in Temporal holds the same facts, encrypted; it is "
    "deleted by Temporal's namespace retention after the workflow closes."
)


class ReferralExport(BaseModel):
    model_config = ConfigDict(frozen=True)

    referral_id: str
    exported_at: datetime
    referral: dict[str, Any] = Field(
        description="The read-model row; `snapshot` is the whole referral (personal data)."
    )
    events: list[dict[str, Any]] = Field(description="The audit timeline, in order.")
    notifications: list[dict[str, Any]]
    documents: list[dict[str, Any]] = Field(description="Issued documents (metadata only).")
    deliveries: list[dict[str, Any]]
    meeting_reservations: list[dict[str, Any]]
    erasure: dict[str, Any] | None = Field(
        description="When the retention period erased the personal data, and what."
    )
    temporal: str = TEMPORAL_NOTE


def _dump(row: SQLModel, *exclude: str) -> dict[str, Any]:
    return row.model_dump(mode="json", exclude=set(exclude))


@router.get(
    "/{referral_id}/export",
    response_model=ReferralExport,
    summary="Everything held about one referral (subject access export)",
    description=(__doc__ or "").split("\n\n", 1)[1],
    responses={404: {"description": "Unknown referral."}},
)
async def export_referral(
    request: Request, session: SessionDep, referral_id: ReferralId
) -> ReferralExport:
    row = await session.get(ReferralRow, referral_id)
    if row is None:
        raise Problem(404, "Not found", f"No referral {referral_id}.")
    require_local_authority(request, row.local_authority)

    async def rows(model: type[SQLModel], order: Any, *exclude: str) -> list[dict[str, Any]]:
        referral = col(model.referral_id)  # type: ignore[attr-defined]
        found = await session.exec(select(model).where(referral == referral_id).order_by(order))
        return [_dump(r, *exclude) for r in found.all()]

    erasure = await session.get(ErasureRow, referral_id)
    return ReferralExport(
        referral_id=referral_id,
        exported_at=datetime.now(UTC),
        referral=_dump(row),
        events=await rows(ReferralEventRow, col(ReferralEventRow.seq)),
        notifications=await rows(NotificationRow, col(NotificationRow.created_at)),
        documents=await rows(DocumentRow, col(DocumentRow.issued_on), "content", "calendar"),
        deliveries=await rows(DeliveryRow, col(DeliveryRow.created_at), "claim_token"),
        meeting_reservations=await rows(
            MeetingReservationRow, col(MeetingReservationRow.starts_at)
        ),
        erasure=_dump(erasure) if erasure is not None else None,
    )
