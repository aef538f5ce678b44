"""Issue a document (certificate, agreement, invitation) and dispatch it, exactly once.

``dispatch_document`` loads the referral from the read model, renders the PDF (or reuses the
bytes already stored under the document's number: a document is never rendered twice into
different bytes), stores it with its SHA-256, emails it to each recipient once and delivers
the matching webhook event (``certificate.issued``, ``agreement.signed``, ``meeting.booked``)
to each subscription once. See ``activities/dispatch.py`` for how "once" is kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.dispatch import (
    Case,
    DispatchConfig,
    Dispatcher,
    Retry,
    autocommit_engine,
    keepalive,
    reach,
    utcnow,
)
from activities.party_links import LinkMinter
from models.adapters.delivery import TransientFailure
from models.adapters.mail import Attachment, Mailer, OutgoingMail
from models.adapters.pdf import (
    FAMILY,
    DocumentUnavailable,
    RenderedDocument,
    clock_time,
    long_date,
    render,
)
from models.adapters.webhooks import WebhookSender
from models.domain.clock import LONDON
from models.domain.correlation import council_reference, subject_for
from models.domain.documents import ICS, PDF, TYPE_TITLES, DocumentKind, document_url, verify_url
from models.domain.party_links import Purpose
from models.domain.referral import Referral
from models.messages import (
    DISPATCH_DOCUMENT,
    DOCUMENT_EVENTS,
    DeliveryOutcome,
    DispatchReport,
    DocumentRequest,
)
from models.store.db import dialect_of, insert_stmt
from models.store.document_tables import DocumentCopyRow, DocumentRow
from models.store.tables import table_of

log = logging.getLogger(__name__)

__all__ = ["DocumentActivities"]


class DocumentActivities:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        mailer: Mailer,
        webhooks: WebhookSender,
        config: DispatchConfig,
    ) -> None:
        self._dispatcher = Dispatcher(sessionmaker, mailer, webhooks, config)
        self._sessionmaker = sessionmaker
        self._dialect = dialect_of(sessionmaker)
        self._engine = autocommit_engine(sessionmaker)
        self._config = config
        self._minter = LinkMinter(sessionmaker, config)

    @activity.defn(name=DISPATCH_DOCUMENT)
    async def dispatch_document(self, req: DocumentRequest) -> DispatchReport:
        """Render (once), store, email each recipient once and deliver the webhook event once."""
        async with keepalive():
            return await self._dispatch(req)

    async def _dispatch(self, req: DocumentRequest) -> DispatchReport:
        case = await self._dispatcher.case(req.referral_id)
        document = await self._issue(case, req)
        outcomes: list[DeliveryOutcome] = []
        retry: list[str] = []
        mediator_email = None
        if "mediator" in req.recipients:
            mediator_email = await self._mediator_email(case.referral, document)
        for recipient in dict.fromkeys(req.recipients):
            target = reach(case.referral, recipient, mediator_email)
            content = await self._copy(case, req, document, recipient)
            key = f"{document.number}:{recipient}"
            links = await self._links(case, document, recipient, key) if target.address else {}
            try:
                outcomes.append(
                    await self._dispatcher.email(
                        case,
                        key=key,
                        purpose="document",
                        recipient=recipient,
                        target=target,
                        compose=self._composer(case, document, recipient, content, links),
                        document_number=document.number,
                    )
                )
            except TransientFailure as exc:
                retry.append(exc.detail)
                continue
            for name in links:
                await self._minter.settled(f"{key}:view" if name == "view" else key)
        event_type = DOCUMENT_EVENTS[document.kind]
        try:
            outcomes += await self._dispatcher.publish(
                case,
                referral_id=case.referral.id,
                local_authority=case.referral.local_authority,
                event_type=event_type,
                event_key=f"{document.number}:{event_type}",
                payload=document_event(case.referral, document, event_type, self._config.base_url),
                purpose="document",
                document_number=document.number,
            )
        except Retry as exc:
            retry += exc.details
        if retry:
            log.info("document %s: %d deliveries to retry", document.number, len(retry))
            raise ApplicationError(str(Retry(retry)), type="DeliveryRetry")
        log.info(
            "document %s dispatched: %s",
            document.number,
            # "family (email) sent": no "email: …" pair, which the log redaction would hide
            ", ".join(f"{o.recipient} ({o.channel}) {o.status}" for o in outcomes)
            or "no recipients",
        )
        return DispatchReport(
            number=document.number,
            kind=document.kind,
            sha256=document.sha256,
            issued_on=document.issued_on,
            deliveries=tuple(outcomes),
        )

    # ------------------------------------------------------------------ the document

    async def _issue(self, case: Case, req: DocumentRequest) -> DocumentRow:
        """The stored document for ``req.number``: rendered and inserted the first time only."""
        existing = await self._stored(req.number)
        if existing is None:
            rendered = await _render(case, req, FAMILY)
            await self._store(case, req, rendered)
            existing = await self._stored(req.number)
            assert existing is not None
        if existing.referral_id != req.referral_id or existing.kind != req.kind:
            raise ApplicationError(
                f"document number {req.number} already belongs to another document",
                type="DocumentNumberClash",
                non_retryable=True,
            )
        return existing

    async def _stored(self, number: str) -> DocumentRow | None:
        table = table_of(DocumentRow)
        async with self._engine.connect() as conn:
            found = (await conn.execute(select(table).where(table.c.number == number))).first()
        return None if found is None else DocumentRow(**found._mapping)

    async def _store(self, case: Case, req: DocumentRequest, rendered: RenderedDocument) -> None:
        values = {
            "number": rendered.number,
            "referral_id": case.referral.id,
            "local_authority": case.referral.local_authority,
            "kind": rendered.kind,
            "variant": rendered.variant,
            "meeting_id": rendered.meeting_id,
            "issued_on": rendered.issued_on,
            "issuer": case.letterhead.issuer.name,
            "sha256": rendered.sha256,
            "size": len(rendered.pdf),
            "media_type": PDF,
            "filename": rendered.filename,
            "content": rendered.pdf,
            "calendar": rendered.calendar,
            "request_key": req.key,
            "created_at": utcnow(),
        }
        stmt = insert_stmt(self._dialect, table_of(DocumentRow)).values(**values)
        async with self._engine.connect() as conn:
            await conn.execute(stmt.on_conflict_do_nothing(index_elements=["number"]))

    async def _copy(
        self, case: Case, req: DocumentRequest, document: DocumentRow, recipient: str
    ) -> bytes:
        """The bytes ``recipient`` gets: the document of record for the family; for anyone
        else their own copy (only what that reader needs), rendered and stored the first
        time and reused by every retry."""
        if recipient == FAMILY:
            return document.content
        copies = table_of(DocumentCopyRow)
        stored = select(copies.c.content).where(
            copies.c.number == document.number, copies.c.recipient == recipient
        )
        async with self._engine.connect() as conn:
            content: bytes | None = await conn.scalar(stored)
        if content is not None:
            return content
        rendered = await _render(case, req, recipient)
        values = {
            "number": document.number,
            "recipient": recipient,
            "sha256": rendered.sha256,
            "size": len(rendered.pdf),
            "content": rendered.pdf,
            "created_at": utcnow(),
        }
        stmt = insert_stmt(self._dialect, copies).values(**values)
        async with self._engine.connect() as conn:  # the first copy stored wins
            await conn.execute(stmt.on_conflict_do_nothing(index_elements=["number", "recipient"]))
            first: bytes | None = await conn.scalar(stored)
        assert first is not None
        return bytes(first)

    async def _links(
        self, case: Case, document: DocumentRow, recipient: str, key: str
    ) -> dict[str, str]:
        """Personal links for this email: the family reads its document as a web page; each
        invitee answers the invitation (attending, or asking to rearrange)."""
        referral = case.referral
        links: dict[str, str] = {}
        if recipient == FAMILY:
            url = await self._minter.url(
                referral,
                send_key=f"{key}:view",
                party=recipient,
                purpose=Purpose.DOCUMENT,
                subject=document.number,
            )
            if url:
                links["view"] = url
        meeting = next((m for m in referral.meetings if m.id == document.meeting_id), None)
        invited = {FAMILY, "supporter", *(meeting.attendees if meeting else ())}
        if document.kind == "invitation" and meeting is not None and recipient in invited:
            url = await self._minter.url(
                referral,
                send_key=key,
                party=recipient,
                purpose=Purpose.MEETING_REPLY,
                subject=meeting.id,
                meeting_starts=meeting.starts_at,
            )
            if url:
                links["reply"] = url
        return links

    async def _mediator_email(self, referral: Referral, document: DocumentRow) -> str | None:
        meeting = next((m for m in referral.meetings if m.id == document.meeting_id), None)
        meeting = meeting or referral.current_meeting or referral.held_meeting
        if meeting is None:
            return None
        return await self._dispatcher.mediator_email(meeting.mediator.id)

    # ------------------------------------------------------------------ the email

    def _composer(
        self,
        case: Case,
        document: DocumentRow,
        recipient: str,
        content: bytes,
        links: dict[str, str] | None = None,
    ) -> Callable[[str, datetime], OutgoingMail]:
        def compose(address: str, when: datetime) -> OutgoingMail:
            subject, body = document_email(
                case, document, recipient, self._config.base_url, links or {}
            )
            attachments = [Attachment(document.filename, PDF, content)]
            if document.calendar is not None:
                attachments.append(
                    Attachment(
                        document.filename.removesuffix(".pdf") + ".ics",
                        f"{ICS}; method=PUBLISH",
                        document.calendar,
                    )
                )
            issuer = case.letterhead.issuer
            return OutgoingMail(
                key=f"{document.number}:{recipient}",
                sender=self._config.mail_from,
                sender_name=issuer.name,
                to=address,
                reply_to=issuer.email,
                subject=subject_for(subject, case.referral, recipient),
                body=body,
                date=when,
                attachments=tuple(attachments),
            )

        return compose


async def _render(case: Case, req: DocumentRequest, reader: str) -> RenderedDocument:
    """The document as ``reader`` gets it (off the event loop); nothing to render under this
    number is a permanent failure."""
    try:
        return await asyncio.to_thread(
            render,
            req.kind,
            case.referral,
            req.number,
            case.letterhead,
            meeting_id=req.meeting_id,
            reader=reader,
        )
    except DocumentUnavailable as exc:
        raise ApplicationError(str(exc), type="DocumentUnavailable", non_retryable=True) from exc


def _kind(document: DocumentRow) -> DocumentKind:
    kind = document.kind
    assert kind in ("certificate", "agreement", "invitation")
    return kind  # type: ignore[return-value]


def document_email(
    case: Case,
    document: DocumentRow,
    recipient: str,
    base_url: str,
    links: dict[str, str] | None = None,
) -> tuple[str, str]:
    """Subject and plain-text body: the document is attached; the body says little."""
    referral = case.referral
    issuer = case.letterhead.issuer
    kind = _kind(document)
    route = "mediation" if referral.route.value == "mediation" else "disagreement resolution"
    yours = recipient == "family"
    lines = ["Hello,", ""]
    if kind == "certificate":
        subject = f"Mediation certificate {document.number}"
        if yours:
            lines.append("Your mediation certificate is attached.")
        else:
            lines.append(
                f"A mediation certificate has been issued for referral {referral.id}; it is "
                "attached."
            )
        certificate = next((c for c in referral.certificates if c.number == document.number), None)
        lines += ["", f"Certificate number: {document.number}"]
        lines.append(f"Issued on: {long_date(document.issued_on)}")
        if certificate is not None and certificate.appeal_deadline is not None:
            lines.append(
                f"Appeal deadline: 5pm on {long_date(certificate.appeal_deadline)} "
                "(the Tribunal must receive the appeal by then)"
            )
    elif kind == "agreement":
        subject = f"Signed {route} agreement {document.number}"
        lines.append(f"The signed {route} agreement is attached. Please keep it.")
        lines += ["", f"Agreement number: {document.number}"]
        lines.append(f"Signed on: {long_date(document.issued_on)}")
    else:
        meeting = next((m for m in referral.meetings if m.id == document.meeting_id), None)
        when = ""
        if meeting is not None:
            starts = meeting.starts_at.astimezone(LONDON)
            when = f" on {long_date(starts.date())} at {clock_time(starts)}"
        subject = f"Invitation: {route} meeting{when}"
        lines.append(
            f"You are invited to a {route} meeting{when} (UK time). The invitation is attached, "
            "with a calendar file you can add to your calendar."
        )
        lines += ["", f"Invitation number: {document.number}"]
    links = links or {}
    if "reply" in links:
        lines += [
            "",
            "Tell us whether you can attend, or ask to rearrange (your personal link; do not "
            "forward it):",
            links["reply"],
        ]
    if "view" in links:
        lines += ["", "Read it as a web page (your personal link):", links["view"]]
    lines += [
        "",
        "Check the document is genuine:",
        verify_url(base_url, document.number),
        "",
        f"Questions? Contact {issuer.name}"
        + (f" on {issuer.phone}" if issuer.phone else "")
        + (f" or {issuer.email}" if issuer.email else "")
        + f" ({issuer.office_hours}).",
        f"Referral reference: {referral.id}",
    ]
    return subject, "\n".join(lines) + "\n"


def document_event(
    referral: Referral, document: DocumentRow, event_type: str, base_url: str
) -> dict[str, Any]:
    """The webhook body for a document: ids, types, dates, numbers and URLs only."""
    data: dict[str, Any] = {
        "referral_id": referral.id,
        "local_authority": referral.local_authority,
        "external_reference": council_reference(referral),
        "route": referral.route.value,
        "document": {
            "number": document.number,
            "type": document.kind,
            "title": TYPE_TITLES[_kind(document)],
            "kind": document.variant,
            "issued_on": document.issued_on.isoformat(),
            "sha256": document.sha256,
            "url": document_url(base_url, document.number),
            "verify_url": verify_url(base_url, document.number),
        },
    }
    if document.kind == "certificate":
        certificate = next((c for c in referral.certificates if c.number == document.number), None)
        if certificate is not None:
            data["certificate"] = {
                "kind": certificate.kind.value,
                "issued_on": certificate.issued_on.isoformat(),
                "due_on": certificate.due_on.isoformat(),
                "on_time": certificate.on_time,
                "appeal_deadline": certificate.appeal_deadline.isoformat()
                if certificate.appeal_deadline
                else None,
            }
    elif document.kind == "invitation":
        meeting = next((m for m in referral.meetings if m.id == document.meeting_id), None)
        if meeting is not None:
            data["meeting"] = {
                "id": meeting.id,
                "starts_at": meeting.starts_at.isoformat(),
                "ends_at": meeting.ends_at.isoformat(),
                "venue": meeting.venue.kind.value,
                "venue_id": meeting.venue.venue_id,
                "mediator_id": meeting.mediator.id,
                "attendees": list(meeting.attendees),
            }
    elif referral.agreement is not None:
        agreement = referral.agreement
        data["agreement"] = {
            "signed_on": agreement.signed_on.isoformat() if agreement.signed_on else None,
            "signatories": list(agreement.signatories),
            "actions": [
                {
                    "id": a.id,
                    "owner": a.owner,
                    "kind": a.kind.value,
                    "due_on": a.due_on.isoformat() if a.due_on else None,
                }
                for a in agreement.actions
            ],
        }
    return {"type": event_type, "timestamp": document.created_at.isoformat(), "data": data}
