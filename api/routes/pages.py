"""``/respond/<token>``: a party answers for themselves, from the link in their email.

Public (no API key): the link's token is the credential (``models/domain/party_links.py``).
Each page reads the link and the referral from the database; a step that decides sends
exactly the command the REST API sends (``send_command``: same model, same validators, same
workflow update) with the party as the recorded actor, once (the link's idempotency key),
then marks the link used. Nothing is recorded from a link that is unknown, tampered with,
expired or superseded, nor from a form without its token (CSRF), nor for a decision the
referral has moved past (the page shows where it stands instead). Requests are counted per
client in the database, so the rate limit holds across API processes (then 429).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.responses import RedirectResponse, Response
from temporalio.client import Client

from api.commands import COMMAND_PATHS, CommandContext, send_command
from api.deps import CodecDep, SessionmakerDep, SettingsDep, TemporalDep
from api.errors import Problem
from api.pages import (
    ASSETS,
    FORM_COOKIE,
    STATIC,
    client_key,
    form_token,
    form_token_ok,
    new_nonce,
    page,
)
from models.adapters.bank_holidays import england_and_wales_calendar
from models.adapters.codec import EncryptionCodec
from models.domain import transitions as tr
from models.domain.clock import london_date
from models.domain.party_links import (
    CHOICES,
    STEP_COMMANDS,
    LinkState,
    Purpose,
    actor_for,
    command_body,
    link_state,
    token_digest,
    well_formed,
)
from models.domain.referral import Referral, Status
from models.domain.timescales import TimescalesRequest, compute_timescales
from models.settings import Settings
from models.store.document_tables import DocumentRow
from models.store.party_links import (
    SUPERSEDED,
    PartyLinkRow,
    count_hit,
    find_link,
    mark_used,
)
from models.store.tables import LocalAuthorityRow, ProviderRow, ReferralRow

router = APIRouter(include_in_schema=False)

SERVICE = "SEND mediation and disagreement resolution"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    """What the pages need from the app (every part through ``api/deps.py``)."""

    maker: async_sessionmaker[AsyncSession]
    settings: Settings
    temporal: Client
    codec: EncryptionCodec


async def page_deps(
    maker: SessionmakerDep, settings: SettingsDep, temporal: TemporalDep, codec: CodecDep
) -> Deps:
    return Deps(maker, settings, temporal, codec)


DepsDep = Annotated[Deps, Depends(page_deps)]


# --------------------------------------------------------------------------- assets


@router.get("/respond/assets/{name}")
async def asset(name: str) -> Response:
    """The pages' stylesheet, built by ``make`` from GOV.UK Frontend (never fetched)."""
    path = STATIC / name
    if name not in ASSETS or not path.is_file():
        return Response("Not found", status_code=404, media_type="text/plain")
    return Response(
        path.read_bytes(),
        media_type=ASSETS[name],
        headers={"cache-control": "public, max-age=3600"},
    )


# --------------------------------------------------------------------------- context


class _Case:
    """What a page shows about the link's referral and who runs it."""

    def __init__(
        self,
        link: PartyLinkRow,
        referral: Referral,
        provider: ProviderRow | None,
        council: str | None,
    ) -> None:
        self.link = link
        self.referral = referral
        self.provider = provider
        self.council = council
        self.purpose = Purpose(link.purpose)

    def context(self) -> dict[str, Any]:
        provider = self.provider
        return {
            "service": SERVICE,
            "provider": provider,
            "provider_name": provider.name if provider else "The mediation service",
            "council": self.council,
            "referral": self.referral,
            "purpose": self.purpose.value,
            "party": self.link.party,
            "party_name": _party_name(self.referral, self.link.party),
            "meeting": _meeting(self.referral, self.link.subject),
            "long_date": _long_date,
            "when": _when,
        }


def _long_date(value: date | str | None) -> str:
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return f"{value.day} {value:%B %Y}" if value else ""


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    from models.domain.clock import LONDON

    local = value.astimezone(LONDON)
    hour = local.strftime("%I").lstrip("0")
    minutes = "" if local.minute == 0 else f":{local:%M}"
    return f"{_long_date(local.date())} at {hour}{minutes}{local:%p}".replace("AM", "am").replace(
        "PM", "pm"
    )


def _party_name(referral: Referral, party: str) -> str:
    if party == "family":
        return "you"
    if party == "supporter":
        return "you (the family's supporter)"
    state = referral.party(party)
    return state.party.organisation if state else party


def _meeting(referral: Referral, meeting_id: str | None) -> Any:
    return next((m for m in referral.meetings if m.id == meeting_id), None)


async def _case(deps: Deps, link: PartyLinkRow) -> _Case | None:
    async with deps.maker() as session:
        row = await session.get(ReferralRow, link.referral_id)
        if row is None:
            return None
        referral = Referral.model_validate(row.snapshot)
        council = await session.get(LocalAuthorityRow, referral.local_authority)
        provider = await session.get(ProviderRow, council.provider_id) if council else None
    return _Case(link, referral, provider, council.name if council else None)


async def _limited(request: Request, deps: Deps) -> Response | None:
    """Count this request; a client over the limit gets a 429 page (nothing is read)."""
    settings = deps.settings
    now = _now()
    window = now.replace(second=0, microsecond=0)
    address = request.client.host if request.client else "unknown"
    hits = await count_hit(deps.maker, client_key(deps.codec.keyring, address), window)
    if hits <= settings.page_requests_per_minute:
        return None
    retry = str(60 - now.second)
    return page(
        "message.html",
        status=429,
        headers={"retry-after": retry},
        service=SERVICE,
        title="Too many requests",
        paragraphs=["Please wait a minute, then try the link in your email again."],
    )


async def _resolve(
    request: Request, deps: Deps, token: str
) -> tuple[_Case | None, Response | None]:
    """The link's case, or the page that answers instead (unknown, closed or used)."""
    if (limited := await _limited(request, deps)) is not None:
        return None, limited
    link = await find_link(deps.maker, token_digest(token)) if well_formed(token) else None
    case = await _case(deps, link) if link is not None else None
    if link is None or case is None:
        return None, page(
            "message.html",
            status=404,
            service=SERVICE,
            title="This link is not recognised",
            paragraphs=[
                "Check that you copied the whole link from your email. Nothing has been recorded.",
                "If it still does not work, contact the mediation service that emailed you: "
                "their phone number and email address are at the end of the email.",
            ],
        )
    state = link_state(
        now=_now(),
        expires=link.expires_at,
        used_at=link.used_at,
        revoked_at=link.revoked_at,
        superseded=link.revoked_reason == SUPERSEDED,
    )
    if state is LinkState.USED:
        return case, page("answered.html", **case.context(), decided=link.decided or {})
    if state is not LinkState.OPEN:
        return case, page("closed.html", status=410, **case.context(), state=state.value)
    return case, None


def _moved_past(case: _Case) -> bool:
    """The referral has moved past this decision (answered another way, closed...)."""
    referral = case.referral
    allowed = tr.allowed_commands(referral)
    match case.purpose:
        case Purpose.DR_CONSENT:
            party = referral.party(case.link.party)
            return "party_response" not in allowed or party is None or party.answered_on is not None
        case Purpose.MEDIATION_DECISION:
            return referral.status is not Status.AWAITING_FAMILY_DECISION
        case Purpose.MEETING_REPLY:
            current = referral.current_meeting
            return (
                "meeting_reply" not in allowed
                or current is None
                or (current.id != case.link.subject)
            )
    return False


def _form(case: _Case, request: Request, deps: Deps, step: str, **context: Any) -> Response:
    """A question page, with its CSRF token (bound to a fresh cookie nonce)."""
    nonce = request.cookies.get(FORM_COOKIE) or new_nonce()
    token = form_token(deps.codec.keyring, nonce, case.link.id, step)
    response = page(
        f"{case.purpose.value}_{step.replace('-', '_')}.html",
        status=context.pop("status", 200),
        **case.context(),
        step=step,
        form_token=token,
        **context,
    )
    settings = deps.settings
    response.set_cookie(
        FORM_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=settings.api_base_url.startswith("https://"),
        path="/respond/",
    )
    return response


def _consequences(case: _Case, deps: Deps) -> dict[str, Any]:
    """What declining mediation leads to, with dates from the deadline calculator."""
    referral = case.referral
    today = london_date(_now())
    settings = deps.settings
    cal = england_and_wales_calendar(today.year - 1, today.year + 2, settings.extra_bank_holidays)
    request_model = referral.request
    if not referral.certificate_required:
        return {"certificate_required": False, "appeal_deadline": referral.appeal_deadline}
    decision = getattr(request_model, "decision", None)
    times = compute_timescales(
        TimescalesRequest(
            decision_letter_date=decision.decision_date if decision else None,
            parent_informed_adviser_no_mediation_date=today,
            certificate_issue_date=today if decision else None,
        ),
        cal,
    )
    return {
        "certificate_required": True,
        "today": today,
        "certificate_by": times.certificate_due_by,
        "appeal_deadline": times.appeal_deadline,
    }


# --------------------------------------------------------------------------- pages


@router.get("/respond/{token}")
@router.get("/respond/{token}/{step}")
async def show(request: Request, deps: DepsDep, token: str, step: str | None = None) -> Response:
    case, answered = await _resolve(request, deps, token)
    if answered is not None:
        return answered
    assert case is not None
    if case.purpose is Purpose.DOCUMENT:
        return await _document(deps, case, step)
    if _moved_past(case):
        return page("current.html", **case.context())
    if step is None:
        return _form(case, request, deps, "choose")
    if step not in CHOICES[case.purpose].values():
        return page("message.html", status=404, service=SERVICE, title="Page not found")
    extra = _consequences(case, deps) if step == "decline" else {}
    return _form(case, request, deps, step, **extra)


@router.post("/respond/{token}")
@router.post("/respond/{token}/{step}")
async def answer(request: Request, deps: DepsDep, token: str, step: str | None = None) -> Response:
    case, answered = await _resolve(request, deps, token)
    if answered is not None:
        return answered
    assert case is not None
    if case.purpose is Purpose.DOCUMENT:
        return page("message.html", status=405, service=SERVICE, title="Nothing to send here")
    raw = (await request.body()).decode("utf-8", "replace")
    form = {k: v[-1] for k, v in parse_qs(raw).items()}
    keyring = deps.codec.keyring
    fetch_site = request.headers.get("sec-fetch-site", "same-origin")
    if fetch_site not in ("same-origin", "none") or not form_token_ok(
        keyring,
        request.cookies.get(FORM_COOKIE),
        form.get("form_token"),
        case.link.id,
        step or "choose",
    ):
        return page(
            "message.html",
            status=403,
            **case.context(),
            title="Your answer was not sent",
            paragraphs=[
                "For your security, answers can only be sent from the page this link opens. "
                "Nothing has been recorded.",
                "Open the link in your email again and answer there.",
            ],
        )
    if _moved_past(case):
        return page("current.html", **case.context())
    if step is None:
        choice = form.get("choice")
        if choice not in ("yes", "no"):
            return _form(
                case,
                request,
                deps,
                "choose",
                status=400,
                errors={"choice": _CHOICE_ERRORS[case.purpose]},
            )
        return RedirectResponse(f"/respond/{token}/{CHOICES[case.purpose][choice]}", 303)
    if step not in CHOICES[case.purpose].values():
        return page("message.html", status=404, service=SERVICE, title="Page not found")
    return await _send(request, deps, case, token, step, form)


_CHOICE_ERRORS = {
    Purpose.DR_CONSENT: "Select yes if you will take part",
    Purpose.MEDIATION_DECISION: "Select yes if you want to go to mediation",
    Purpose.MEETING_REPLY: "Select yes if you can attend the meeting",
}
_FIELD_ERRORS = {
    "reason": "Tell us why",
}


async def _send(
    request: Request, deps: Deps, case: _Case, token: str, step: str, form: dict[str, str]
) -> Response:
    link = case.link
    body = {
        k: v
        for k, v in command_body(case.purpose, step, link.party, link.subject, form).items()
        if v is not None
    }
    name = STEP_COMMANDS[(case.purpose, step)]
    model, update = COMMAND_PATHS[name.replace("_", "-")]
    try:
        command = model.model_validate(body)
    except ValidationError as exc:
        errors = {
            str(e["loc"][-1]) if e["loc"] else "reason": _FIELD_ERRORS.get(
                str(e["loc"][-1]) if e["loc"] else "reason", str(e["msg"])
            )
            for e in exc.errors()
        }
        extra = _consequences(case, deps) if step == "decline" else {}
        return _form(case, request, deps, step, status=400, errors=errors, form=form, **extra)
    ctx = CommandContext(
        path=f"/respond/link/{link.id}",
        temporal=deps.temporal,
        settings=deps.settings,
        maker=deps.maker,
        caller=actor_for(link.party),
    )
    try:
        await send_command(ctx, link.referral_id, update, command, f"link-{link.id}")
    except Problem as problem:
        if problem.status in (409, 422, 404):
            fresh = await _case(deps, link)
            return page("current.html", **(fresh or case).context())
        return page(
            "message.html",
            status=503,
            headers={"retry-after": "30"},
            **case.context(),
            title="Sorry, there is a problem with the service",
            paragraphs=[
                "Your answer has not been recorded yet. Please try again in a few minutes.",
            ],
        )
    today = london_date(_now())
    await mark_used(
        deps.maker,
        link.id,
        at=_now(),
        decided={"step": step, "command": name, "on": today.isoformat()},
    )
    return RedirectResponse(f"/respond/{token}", 303)


async def _document(deps: Deps, case: _Case, step: str | None) -> Response:
    """The family's document as an accessible web page, beside its PDF."""
    async with deps.maker() as session:
        document = await session.get(DocumentRow, case.link.subject)
    if document is None or document.referral_id != case.referral.id:
        return page("message.html", status=404, service=SERVICE, title="Page not found")
    if step == "pdf":
        return Response(
            document.content,
            media_type="application/pdf",
            headers={"content-disposition": f'inline; filename="{document.filename}"'},
        )
    if step is not None:
        return page("message.html", status=404, service=SERVICE, title="Page not found")
    referral = case.referral
    certificate = next((c for c in referral.certificates if c.number == document.number), None)
    return page(
        "document.html",
        **case.context(),
        document=document,
        certificate=certificate,
        agreement=referral.agreement if document.kind == "agreement" else None,
        invited=_meeting(referral, document.meeting_id),
        pdf_size_kb=max(1, round(document.size / 1024)),
        valid_until=case.link.expires_at + timedelta(0),
    )
