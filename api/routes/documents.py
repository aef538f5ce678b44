"""Issued documents: served again byte for byte, verified publicly, listed per referral.

The API never renders: it serves the bytes that were sent, as stored by the worker.
``GET /v1/documents/{number}/verify`` is public and answers only whether a number is genuine,
the document's type and issue date (and, given ``?sha256=``, whether a file is unaltered).
"""

from __future__ import annotations

import base64
import hmac
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.auth import allowed_local_authorities
from api.deps import ReferralId, SessionmakerDep, SettingsDep
from api.errors import Problem
from api.schemas import DeliveryRead, delivery_read
from api.verification_page import verification_page, wants_html
from models.domain.documents import (
    ICS,
    document_url,
    kind_of,
    normalise_number,
    title_of,
    verify_url,
)
from models.store.document_tables import DeliveryRow, DocumentCopyRow, DocumentRow
from models.store.tables import ReferralRow

router = APIRouter(tags=["documents"])

Number = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="The document number printed on it, e.g. MC-1A2B-3C4D-5E6F-7A8B.",
    ),
]


class Read(BaseModel):
    model_config = ConfigDict(frozen=True)


class DocumentRead(Read):
    number: str
    type: str = Field(description="certificate, agreement or invitation.")
    title: str
    kind: str | None = Field(default=None, description="For certificates: the certificate kind.")
    meeting_id: str | None = None
    issued_on: date
    issuer: str
    sha256: str = Field(description="SHA-256 of the PDF's bytes (hex).")
    size: int
    media_type: str
    filename: str
    url: str
    verify_url: str
    calendar_url: str | None = Field(default=None, description="Invitations: the .ics file.")
    deliveries: list[DeliveryRead]


class DocumentList(Read):
    referral_id: str
    documents: list[DocumentRead]


class DeliveryList(Read):
    referral_id: str
    deliveries: list[DeliveryRead]


class Verification(Read):
    number: str
    genuine: bool = Field(description="Whether this service issued a document with this number.")
    type: str | None = None
    title: str | None = None
    issued_on: date | None = None
    issuer: str | None = None
    sha256: str | None = Field(default=None, description="SHA-256 of the genuine file (hex).")
    sha256_matches: bool | None = Field(
        default=None,
        description="Given ?sha256=: whether the file checked is the genuine one (any "
        "recipient's copy of it).",
    )
    appeal_deadline: date | None = Field(
        default=None,
        description="Certificates: the last day (5pm) for the Tribunal to receive an appeal.",
    )


async def _document(maker: async_sessionmaker[AsyncSession], number: str) -> DocumentRow | None:
    if kind_of(number) is None:
        return None
    async with maker() as session:
        row: DocumentRow | None = await session.get(DocumentRow, normalise_number(number))
        return row


async def _digest_matches(
    maker: async_sessionmaker[AsyncSession], row: DocumentRow, sha256: str
) -> bool:
    """Whether ``sha256`` is the document of record's, or one recipient's copy's."""
    if hmac.compare_digest(row.sha256, sha256):
        return True
    async with maker() as session:
        copies = await session.exec(
            select(DocumentCopyRow.sha256).where(col(DocumentCopyRow.number) == row.number)
        )
        return any(hmac.compare_digest(digest, sha256) for digest in copies.all())


async def _appeal_deadline(
    maker: async_sessionmaker[AsyncSession], row: DocumentRow
) -> date | None:
    """A certificate's appeal deadline, from the referral as projected."""
    if row.kind != "certificate":
        return None
    async with maker() as session:
        referral = await session.get(ReferralRow, row.referral_id)
    certificates = referral.snapshot.get("certificates", []) if referral else []
    for certificate in certificates:
        if certificate.get("number") == row.number and certificate.get("appeal_deadline"):
            return date.fromisoformat(certificate["appeal_deadline"])
    return None


async def _readable(
    request: Request, maker: async_sessionmaker[AsyncSession], number: str
) -> DocumentRow:
    """The document, if the caller's key covers its council (else the same 404: no oracle)."""
    row = await _document(maker, number)
    allowed = allowed_local_authorities(request)
    if row is None or (allowed is not None and row.local_authority not in allowed):
        raise Problem(404, "Not found", "No document has this number.")
    return row


async def _require_referral(maker: async_sessionmaker[AsyncSession], referral_id: str) -> None:
    async with maker() as session:
        if await session.get(ReferralRow, referral_id) is None:
            raise Problem(404, "Not found", f"No referral {referral_id}.")


@router.get(
    "/referrals/{referral_id}/documents",
    response_model=DocumentList,
    summary="Certificates, agreements and invitations issued for a referral, with deliveries",
    responses={404: {"description": "Unknown referral."}},
)
async def list_documents(
    maker: SessionmakerDep, referral_id: ReferralId, settings: SettingsDep
) -> DocumentList:
    await _require_referral(maker, referral_id)
    async with maker() as session:
        documents = (
            await session.exec(
                select(DocumentRow)
                .where(col(DocumentRow.referral_id) == referral_id)
                .order_by(col(DocumentRow.issued_on), col(DocumentRow.created_at))
            )
        ).all()
        deliveries = (
            await session.exec(
                select(DeliveryRow)
                .where(
                    col(DeliveryRow.referral_id) == referral_id,
                    col(DeliveryRow.document_number).is_not(None),
                )
                .order_by(col(DeliveryRow.created_at), col(DeliveryRow.key))
            )
        ).all()
    base = settings.api_base_url
    return DocumentList(
        referral_id=referral_id,
        documents=[
            DocumentRead(
                number=doc.number,
                type=doc.kind,
                title=title_of(doc.kind),
                kind=doc.variant,
                meeting_id=doc.meeting_id,
                issued_on=doc.issued_on,
                issuer=doc.issuer,
                sha256=doc.sha256,
                size=doc.size,
                media_type=doc.media_type,
                filename=doc.filename,
                url=document_url(base, doc.number),
                verify_url=verify_url(base, doc.number),
                calendar_url=(
                    f"{document_url(base, doc.number)}/calendar.ics" if doc.calendar else None
                ),
                deliveries=[
                    delivery_read(d) for d in deliveries if d.document_number == doc.number
                ],
            )
            for doc in documents
        ],
    )


@router.get(
    "/referrals/{referral_id}/deliveries",
    response_model=DeliveryList,
    summary="Every email and webhook sent (or not) for a referral, with its state",
    responses={404: {"description": "Unknown referral."}},
)
async def list_deliveries(maker: SessionmakerDep, referral_id: ReferralId) -> DeliveryList:
    await _require_referral(maker, referral_id)
    async with maker() as session:
        rows = (
            await session.exec(
                select(DeliveryRow)
                .where(col(DeliveryRow.referral_id) == referral_id)
                .order_by(col(DeliveryRow.created_at), col(DeliveryRow.key))
            )
        ).all()
    return DeliveryList(referral_id=referral_id, deliveries=[delivery_read(r) for r in rows])


def _digest_headers(sha256_hex: str) -> dict[str, str]:
    b64 = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
    return {"ETag": f'"{sha256_hex}"', "Repr-Digest": f"sha-256=:{b64}:"}


@router.get(
    "/documents/{number}",
    response_class=Response,
    summary="The document's PDF, exactly as it was sent",
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The PDF."},
        404: {"description": "No document has this number."},
        410: {"description": "Erased under the retention policy."},
    },
)
async def get_document(request: Request, maker: SessionmakerDep, number: Number) -> Response:
    row = await _readable(request, maker, number)
    if not row.content:
        raise Problem(410, "Gone", "Erased under the retention policy.")
    headers = {
        "Content-Disposition": f'inline; filename="{row.filename}"',
        "Cache-Control": "private, no-store",
        **_digest_headers(row.sha256),
    }
    accept = request.headers.get("accept", "")
    # Generated clients that cannot read application/pdf ask for bytes (api/openapi.py).
    octets = "application/octet-stream" in accept and row.media_type not in accept
    media_type = "application/octet-stream" if octets else row.media_type
    return Response(row.content, media_type=media_type, headers=headers)


@router.get(
    "/documents/{number}/calendar.ics",
    response_class=Response,
    summary="An invitation's calendar file (.ics), exactly as it was sent",
    responses={
        200: {"content": {ICS: {}}, "description": "The iCalendar file."},
        404: {"description": "No invitation has this number."},
    },
)
async def get_calendar(request: Request, maker: SessionmakerDep, number: Number) -> Response:
    row = await _readable(request, maker, number)
    if row.calendar is None and row.kind == "invitation" and not row.content:
        raise Problem(410, "Gone", "Erased under the retention policy.")
    if row.calendar is None:
        raise Problem(404, "Not found", "No invitation has this number.")
    headers = {
        "Content-Disposition": f'attachment; filename="{row.filename.removesuffix(".pdf")}.ics"',
        "Cache-Control": "private, no-store",
    }
    return Response(row.calendar, media_type=f"{ICS}; charset=utf-8", headers=headers)


@router.get(
    "/documents/{number}/verify",
    response_model=Verification,
    response_model_exclude_none=True,
    summary="Public: is this document genuine? Its type and issue date, nothing personal",
    description=(
        "No authentication. Answers whether the service issued a document with this number, "
        "what type it is and when it was issued; never who it is about. With `?sha256=` "
        "(the hex SHA-256 of a file), also whether that file is the genuine one, unaltered."
    ),
)
async def verify_document(
    request: Request,
    maker: SessionmakerDep,
    number: Number,
    sha256: Annotated[
        str | None,
        Query(pattern=r"^[0-9a-fA-F]{64}$", description="Hex SHA-256 of the file to check."),
    ] = None,
) -> Any:
    row = await _document(maker, number)
    shown = normalise_number(number)
    headers = {"Cache-Control": "no-store", "Vary": "Accept"}
    if row is None:
        body = Verification(number=shown, genuine=False)
    else:
        body = Verification(
            number=row.number,
            genuine=True,
            type=row.kind,
            title=title_of(row.kind),
            issued_on=row.issued_on,
            issuer=row.issuer,
            sha256=row.sha256,
            sha256_matches=(
                await _digest_matches(maker, row, sha256.lower()) if sha256 is not None else None
            ),
            appeal_deadline=await _appeal_deadline(maker, row),
        )
    if row is None and sha256 is not None:
        body = body.model_copy(update={"sha256_matches": False})
    if wants_html(request):
        return HTMLResponse(verification_page(body), headers=headers)
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), headers=headers)
