"""The documents the service issues, as PDFs (ReportLab), plus the invitation's iCalendar file.

Pure functions of the referral (as the workflow projected it), the document's number and the
letterhead (the council's provider, from the registry): no database, clock or network. The
output is byte-for-byte reproducible (ReportLab's invariant mode, dates taken from the
referral), and the dispatcher stores the first bytes it made and only ever sends those.

Accessibility, as far as ReportLab goes: title, author, subject and keywords metadata; the
document language (``en-GB``); the title shown in the viewer's title bar; an outline
(bookmarks) of the headings; embedded fonts; one column in reading order; no text in images;
plain English and dates written out in full. ReportLab cannot write a PDF structure tree, so
the files are not tagged PDF/UA.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer

from models.adapters.ics import calendar_file
from models.domain.clock import LONDON, start_of_london_day
from models.domain.documents import (
    DAYS,
    MONTHS,
    PREFIX,
    DocumentKind,
    sha256_hex,
    verify_url,
)
from models.domain.documents import long_date as long_date  # documents' date style, re-exported
from models.domain.referral import (
    ActionKind,
    AgreedAction,
    Agreement,
    Certificate,
    CertificateKind,
    DecisionType,
    DisagreementResolutionReferralCreate,
    DisagreementType,
    MediationReferralCreate,
    Meeting,
    MeetingOutcome,
    Referral,
    ReferrerRole,
    Route,
    VenueKind,
)


class DocumentUnavailable(ValueError):
    """The referral holds nothing to render under this number (wrong number, kind or meeting)."""


@dataclass(frozen=True)
class Issuer:
    """The mediation provider that issues the documents (the council's provider row)."""

    name: str
    phone: str | None = None
    email: str | None = None
    website: str | None = None
    address: str | None = None
    office_hours: str = "Monday to Friday, 9am to 5pm"


@dataclass(frozen=True)
class Letterhead:
    issuer: Issuer
    council_name: str
    base_url: str = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class RenderedDocument:
    number: str
    kind: DocumentKind
    variant: str | None
    meeting_id: str | None
    issued_on: date
    title: str
    filename: str
    pdf: bytes
    calendar: bytes | None = None

    @property
    def sha256(self) -> str:
        return sha256_hex(self.pdf)


# --------------------------------------------------------------------------- helpers


def short_date(d: date) -> str:
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def clock_time(instant: datetime) -> str:
    """'10am', '2:30pm' in Europe/London (GOV.UK style)."""
    local = instant.astimezone(LONDON)
    hour = local.hour % 12 or 12
    suffix = "am" if local.hour < 12 else "pm"
    if local.hour == 12 and local.minute == 0:
        return "midday"
    return f"{hour}{suffix}" if local.minute == 0 else f"{hour}:{local.minute:02d}{suffix}"


DECISIONS: Final[dict[DecisionType, str]] = {
    DecisionType.REFUSAL_TO_ASSESS: "not to carry out an EHC needs assessment",
    DecisionType.REFUSAL_TO_REASSESS: "not to carry out an EHC needs re-assessment",
    DecisionType.REFUSAL_TO_ISSUE: "not to issue an EHC plan after the assessment",
    DecisionType.REFUSAL_TO_AMEND: "not to amend the EHC plan after a review or re-assessment",
    DecisionType.CEASE_TO_MAINTAIN: "to stop maintaining the EHC plan",
    DecisionType.PLAN_CONTENTS: "about what the EHC plan contains",
}

CERTIFICATE_KINDS: Final[dict[CertificateKind, str]] = {
    CertificateKind.DECLINED_MEDIATION: "You decided not to go to mediation",
    CertificateKind.AFTER_MEDIATION: "Mediation took place",
    CertificateKind.DEEMED: "Mediation was not held within 30 days",
}

ROLES: Final[dict[ReferrerRole, str]] = {
    ReferrerRole.PARENT: "parent",
    ReferrerRole.YOUNG_PERSON: "young person",
    ReferrerRole.ALTERNATIVE_PERSON: "alternative person acting for the young person",
}


def _route_name(referral: Referral) -> str:
    return "mediation" if referral.route is Route.MEDIATION else "disagreement resolution"


def party_label(referral: Referral, party_id: str) -> str:
    """'Hertfordshire County Council (SEN officer)' for a party id; the family by name."""
    if party_id == "family":
        referrer = referral.request.referrer
        return f"{referrer.contact.name} ({ROLES[referrer.role]})"
    state = referral.party(party_id)
    if state is None:
        return party_id
    party = state.party
    role = f", {party.role}" if party.role else ""
    return f"{party.organisation} ({party.contact.name}{role})"


FAMILY: Final = "family"
MEDIATOR: Final = "mediator"
SUPPORTER: Final = "supporter"

DISAGREEMENTS: Final[dict[DisagreementType, str]] = {
    DisagreementType.SEN_PROVISION: "about the special educational provision being made",
    DisagreementType.CARRYING_OUT_DUTIES: "about how the council or school is carrying out its "
    "duties",
    DisagreementType.HEALTH_OR_SOCIAL_CARE: "about health or social care provision",
}

#: What set an agreed action's due date, in words (the law's time limits, RULES.md §3.3).
ACTION_RULES: Final[dict[ActionKind, str]] = {
    ActionKind.NON_APPEALABLE: "2 weeks from the agreement, the legal time limit for actions "
    "that cannot be appealed",
    ActionKind.ICB_NOTIFY_LA: "1 week from the agreement, the legal time limit for the health "
    "body to tell the council",
    ActionKind.CEASE_PLAN: "the legal time limit: straight away",
    ActionKind.ASSESS_NOTIFY: "2 weeks from the agreement, the legal time limit to tell the "
    "family an assessment will be carried out",
    ActionKind.ASSESS_NOT_NECESSARY: "10 weeks from the agreement, the legal time limit to say "
    "a plan is not needed",
    ActionKind.ASSESS_FINAL_PLAN: "14 weeks from the agreement, the legal time limit for the "
    "final plan",
    ActionKind.MAKE_PLAN_DRAFT: "5 weeks from the agreement, the legal time limit for the draft "
    "plan",
    ActionKind.MAKE_PLAN_FINAL: "11 weeks from the agreement, the legal time limit for the final "
    "plan",
    ActionKind.RECONSIDER: "2 weeks from the agreement, the legal time limit to reconsider",
    ActionKind.AMEND_PLAN: "5 weeks from the agreement, the legal time limit to amend the plan",
    ActionKind.AMEND_SCHOOL: "2 weeks from the agreement, the legal time limit to change the "
    "school named in the plan",
    ActionKind.CONTINUE_TO_MAINTAIN: "the legal time limit: straight away",
    ActionKind.AGREED_DATE: "the date everyone agreed",
}


def reader_label(referral: Referral, reader: str, meeting: Meeting | None = None) -> str:
    """Who a copy is addressed to, in words."""
    if reader == MEDIATOR and meeting is not None:
        return f"{meeting.mediator.name}, the mediator"
    supporter = referral.request.supporter
    if reader == SUPPORTER and supporter is not None:
        return f"{supporter.name}, the family's supporter"
    return party_label(referral, reader)


def due_text(action: AgreedAction) -> str:
    """'Saturday 4 April 2026 (a weekend day: set by …)' when the limit ends on a weekend."""
    if action.due_on is None:
        return "no date set"
    text = long_date(action.due_on)
    if action.due_on.weekday() >= 5:
        text += (
            f" (a {DAYS[action.due_on.weekday()]}: set by {ACTION_RULES[action.kind]}, which "
            "counts every day, weekends included)"
        )
    return text


def duration_text(minutes: int) -> str:
    """'1 hour', '2 and a half hours', '1 hour and 45 minutes'."""
    hours, rest = divmod(minutes, 60)
    if rest == 30 and hours:
        return f"{hours} and a half hours"
    parts = []
    if hours:
        parts.append(f"{hours} hour" + ("s" if hours != 1 else ""))
    if rest:
        parts.append(f"{rest} minutes")
    return " and ".join(parts)


# --------------------------------------------------------------------------- PDF building

_FONT_LOCK = threading.Lock()
_FONTS: dict[str, str] = {}


def _fonts() -> tuple[str, str]:
    """Embedded fonts (Bitstream Vera, shipped with ReportLab): regular and bold."""
    with _FONT_LOCK:
        if not _FONTS:
            import reportlab

            folder = Path(reportlab.__file__).parent / "fonts"
            pdfmetrics.registerFont(TTFont("SendVera", str(folder / "Vera.ttf")))
            pdfmetrics.registerFont(TTFont("SendVera-Bold", str(folder / "VeraBd.ttf")))
            pdfmetrics.registerFontFamily("SendVera", normal="SendVera", bold="SendVera-Bold")
            _FONTS["regular"] = "SendVera"
            _FONTS["bold"] = "SendVera-Bold"
        return _FONTS["regular"], _FONTS["bold"]


@dataclass(frozen=True)
class _Styles:
    title: ParagraphStyle
    subtitle: ParagraphStyle
    h2: ParagraphStyle
    body: ParagraphStyle
    small: ParagraphStyle


def _styles() -> _Styles:
    regular, bold = _fonts()
    body = ParagraphStyle(
        "body",
        fontName=regular,
        fontSize=11,
        leading=14,
        spaceAfter=3,
        alignment=TA_LEFT,
        textColor=colors.black,
    )
    return _Styles(
        title=ParagraphStyle("title", parent=body, fontName=bold, fontSize=20, leading=26),
        subtitle=ParagraphStyle("subtitle", parent=body, fontName=bold, fontSize=13, leading=18),
        h2=ParagraphStyle("h2", parent=body, fontName=bold, fontSize=13, leading=17, spaceBefore=5),
        body=body,
        small=ParagraphStyle("small", parent=body, fontSize=10.5, leading=14),
    )


class _Heading(Paragraph):
    """A heading: also an outline entry (bookmark) in the PDF."""

    outline_level = 0


class _NumberedCanvas(Canvas):
    """Writes "Page N of M" at the foot of every page (the count known once all are laid out)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # ReportLab hook name
        self._pages.append(dict(self.__dict__))
        self._startPage()  # type: ignore[attr-defined]  # ReportLab's own page reset

    def save(self) -> None:
        total = len(self._pages)
        regular, _bold = _fonts()
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self.setFont(regular, 9.5)
            self.setFillColor(colors.black)
            self.drawRightString(A4[0] - 20 * mm, 11 * mm, f"Page {number} of {total}")
            super().showPage()
        super().save()


class _Doc(SimpleDocTemplate):
    def __init__(self, buffer: io.BytesIO, *, issued_on: date, **kw: Any) -> None:
        super().__init__(buffer, **kw)
        self._issued_on = issued_on
        self._bookmarks = 0

    def afterFlowable(self, flowable: Flowable) -> None:  # ReportLab hook name
        if isinstance(flowable, _Heading):
            self._bookmarks += 1
            key = f"h{self._bookmarks}"
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(flowable.getPlainText(), key, level=flowable.outline_level)

    def stamp(self, canvas: Any, _doc: Any) -> None:
        """Every page: the creation date is the issue date (reproducible bytes)."""
        d = self._issued_on
        canvas.setDateFormatter(
            lambda *_args: f"D:{d.year:04d}{d.month:02d}{d.day:02d}000000+00'00'"
        )


def _text(value: object) -> str:
    return escape(str(value))


class _Builder:
    def __init__(self) -> None:
        self.s = _styles()
        self.story: list[Flowable] = []

    def title(self, text: str, subtitle: str, copy_for: str | None = None) -> None:
        heading = _Heading(_text(text), self.s.title)
        self.story += [heading, Paragraph(_text(subtitle), self.s.subtitle)]
        if copy_for:
            self.story.append(Paragraph(f"<b>Copy for:</b> {_text(copy_for)}", self.s.body))
        self.story.append(Spacer(1, 3 * mm))

    def heading(self, text: str) -> None:
        heading = _Heading(_text(text), self.s.h2)
        heading.outline_level = 1
        self.story.append(heading)

    def para(self, text: str, *, small: bool = False) -> None:
        self.story.append(Paragraph(_text(text), self.s.small if small else self.s.body))

    def field(self, label: str, value: str) -> None:
        self.story.append(Paragraph(f"<b>{_text(label)}:</b> {_text(value)}", self.s.body))

    def fields(self, pairs: Sequence[tuple[str, str | None]]) -> None:
        """Several short label/value pairs in one paragraph (those with a value)."""
        text = " · ".join(f"<b>{_text(k)}:</b> {_text(v)}" for k, v in pairs if v)
        self.story.append(Paragraph(text, self.s.body))

    def items(self, lines: Sequence[str]) -> None:
        for n, line in enumerate(lines, start=1):
            self.story.append(Paragraph(f"{n}. {_text(line)}", self.s.body))

    def block(self, lines: Sequence[tuple[str, str]]) -> None:
        """Label/value lines kept on one page (an agreed action, say)."""
        self.story.append(
            KeepTogether(
                [Paragraph(f"<b>{_text(k)}:</b> {_text(v)}", self.s.body) for k, v in lines]
                + [Spacer(1, 2 * mm)]
            )
        )

    def build(
        self, *, title: str, subject: str, keywords: Sequence[str], issuer: Issuer, issued_on: date
    ) -> bytes:
        buffer = io.BytesIO()
        regular, _bold = _fonts()
        doc = _Doc(
            buffer,
            issued_on=issued_on,
            pagesize=A4,
            leftMargin=20 * mm,
            rightMargin=20 * mm,
            topMargin=18 * mm,
            bottomMargin=18 * mm,
            title=title,
            author=issuer.name,
            subject=subject,
            creator="SEND referrals service",
            producer="SEND referrals service (ReportLab)",
            keywords=list(keywords),
            lang="en-GB",
            displayDocTitle=True,
            invariant=1,
            pageCompression=1,
            initialFontName=regular,
        )
        doc.build(
            self.story,
            onFirstPage=doc.stamp,
            onLaterPages=doc.stamp,
            canvasmaker=_NumberedCanvas,
        )
        return buffer.getvalue()


def _contact(b: _Builder, issuer: Issuer, *, number: str, letterhead: Letterhead) -> None:
    """The closing block, kept on one page (never a last page holding only its tail)."""
    start = len(b.story)
    b.heading("Check this document")
    b.para(
        "Anyone can check that this document is genuine at "
        f"{verify_url(letterhead.base_url, number)}. The check shows only the type of "
        "document and its date, never personal details."
    )
    b.heading(f"Contact {issuer.name}")
    b.fields(
        [
            ("Phone", issuer.phone),
            ("Email", issuer.email),
            ("Website", issuer.website),
            ("Address", issuer.address),
            ("Opening hours", issuer.office_hours),
        ]
    )
    b.para(
        "If you need this document in another format, such as large print, easy read, audio "
        "or another language, or you need any other reasonable adjustment, contact us."
    )
    b.story[start:] = [KeepTogether(b.story[start:])]


# --------------------------------------------------------------------------- certificate


def _find_certificate(referral: Referral, number: str) -> Certificate:
    for certificate in referral.certificates:
        if certificate.number == number:
            return certificate
    raise DocumentUnavailable(f"referral {referral.id} has no certificate {number}")


def render_certificate(
    referral: Referral, number: str, letterhead: Letterhead, reader: str = FAMILY
) -> RenderedDocument:
    """The family's certificate, or a copy for ``reader`` (the council), in the third person."""
    certificate = _find_certificate(referral, number)
    request = referral.request
    if not isinstance(request, MediationReferralCreate):
        raise DocumentUnavailable("certificates are issued for mediation referrals only")
    issuer = letterhead.issuer
    referrer = request.referrer
    yours = reader == FAMILY
    b = _Builder()
    b.title(
        "Mediation certificate",
        f"Certificate number {number}",
        None if yours else reader_label(referral, reader),
    )
    b.para(
        "This certificate confirms that the person named below has met the requirement to "
        "consider mediation before appealing to the First-tier Tribunal (Special Educational "
        "Needs and Disability), under section 55 of the Children and Families Act 2014. "
        + (
            "Keep it: you need it to register an appeal."
            if yours
            else "This is a copy for your records: the family needs the certificate to "
            "register an appeal."
        )
    )

    b.heading("Who this certificate is for")
    b.field("Name", f"{referrer.contact.name} ({ROLES[referrer.role]})")
    if referrer.role is ReferrerRole.PARENT:
        b.field("Child", request.child.name)
    else:
        b.field("Young person", request.child.name)
    b.field("Date of birth", short_date(request.child.date_of_birth))

    b.heading("The decision you disagree with" if yours else "The decision disputed")
    b.field("Council", letterhead.council_name)
    b.field("Decision", f"The council decided {DECISIONS[request.decision.type]}")
    b.field("Date of the decision letter", long_date(request.decision.letter_date))
    if request.decision.sent_date and request.decision.sent_date != request.decision.letter_date:
        b.field("Date the decision was sent", long_date(request.decision.sent_date))
    if request.decision.sections:
        b.field(
            "EHC plan sections disputed",
            ", ".join(section.value for section in request.decision.sections),
        )

    b.heading("Why this certificate was issued")
    kind_text = CERTIFICATE_KINDS[certificate.kind]
    b.field("Type of certificate", kind_text if yours else kind_text.replace("You", "The family"))
    you, your = ("you", "your") if yours else ("the family", "their")
    if certificate.kind is CertificateKind.DECLINED_MEDIATION:
        told = referral.declined_on or certificate.issued_on
        b.para(
            f"{you.capitalize()} spoke to a mediation adviser about mediation and then told us "
            f"on {long_date(told)} that {'you do' if yours else 'they do'} not want to go to "
            f"mediation. {you.capitalize()} can still appeal."
        )
    elif certificate.kind is CertificateKind.AFTER_MEDIATION:
        held = referral.held_meeting
        held_on = held.held_on if held and held.held_on else None
        when = f" on {long_date(held_on)}" if held_on else ""
        if held is not None and held.outcome is MeetingOutcome.AGREEMENT:
            # A16: a certificate after every concluded mediation, full agreement included.
            b.para(
                f"Mediation took place{when} and everyone reached an agreement. An agreement "
                f"does not take away {your} right to appeal: if {you} still need to appeal to "
                f"the Tribunal, this certificate lets {'you' if yours else 'them'} do so."
            )
        else:
            b.para(
                f"Mediation took place{when}. Not every issue was resolved, so {you} can appeal "
                "to the Tribunal about the issues that are still unresolved."
            )
    else:
        requested = referral.mediation_requested_on
        since = f" after the council was told on {long_date(requested)}" if requested else ""
        b.para(
            f"{you.capitalize()} asked for mediation, but no mediation meeting was held within "
            f"30 days{since}. This certificate counts for {your} appeal. A mediation meeting "
            "can still take place later if everyone agrees."
        )
    b.field("Date of issue", long_date(certificate.issued_on))
    b.field("Issued by", f"{issuer.name}, the independent mediation service")

    b.heading("Your appeal deadline" if yours else "The appeal deadline")
    if certificate.appeal_deadline is not None:
        b.para(
            f"If {you} want to appeal, the Tribunal must receive {your} appeal by 5pm on "
            f"{long_date(certificate.appeal_deadline)}."
        )
        b.para(
            "This is 2 months from the date of the decision letter or 1 month from the date "
            "of this certificate, whichever is later, moved on where the Tribunal's rules say "
            "so (for example over Christmas and in August).",
            small=True,
        )
    else:
        b.para(f"Contact us or the Tribunal to check the date by which {your} appeal must be made.")
    if certificate.section_i_note:
        b.field("Section I (the school or placement)", certificate.section_i_note)

    _contact(b, issuer, number=number, letterhead=letterhead)
    pdf = b.build(
        title=f"Mediation certificate {number}",
        subject=f"Mediation certificate ({certificate.kind.value}) issued "
        f"{certificate.issued_on.isoformat()}",
        keywords=("mediation certificate", "SEND", "appeal", number),
        issuer=issuer,
        issued_on=certificate.issued_on,
    )
    return RenderedDocument(
        number=number,
        kind="certificate",
        variant=certificate.kind.value,
        meeting_id=None,
        issued_on=certificate.issued_on,
        title=f"Mediation certificate {number}",
        filename=f"mediation-certificate-{number}.pdf",
        pdf=pdf,
    )


# --------------------------------------------------------------------------- agreement


def _agreement(referral: Referral) -> Agreement:
    if referral.agreement is None:
        raise DocumentUnavailable(f"referral {referral.id} has no agreement")
    return referral.agreement


def _decision_disputed(referral: Referral, council: str) -> str:
    request = referral.request
    if isinstance(request, MediationReferralCreate):
        return (
            f"{council} decided {DECISIONS[request.decision.type]} (decision letter dated "
            f"{long_date(request.decision.letter_date)})"
        )
    return f"A disagreement {DISAGREEMENTS[request.disagreement_type]}"


def render_agreement(
    referral: Referral, number: str, letterhead: Letterhead, reader: str = FAMILY
) -> RenderedDocument:
    """The agreement; the child is named only in the copies of the family and the signatories."""
    agreement = _agreement(referral)
    issuer = letterhead.issuer
    issued_on = agreement.signed_on or agreement.recorded_on
    route = _route_name(referral)
    b = _Builder()
    b.title(
        f"Signed {route} agreement",
        f"Agreement number {number}",
        None if reader == FAMILY else reader_label(referral, reader),
    )
    b.para(
        f"This is the written agreement reached at {route}. Everyone who took part gets a copy. "
        "What was said at the meeting stays confidential: this document records only what was "
        "agreed."
    )
    b.heading("Who agreed")
    signatories = agreement.signatories or ("family",)
    b.items([party_label(referral, p) for p in signatories])
    held = referral.held_meeting
    if held is not None and held.held_on is not None:
        b.field("Meeting held on", long_date(held.held_on))
    b.field("Agreement signed on", long_date(issued_on))
    b.field("Council", letterhead.council_name)
    b.field("Decision disputed", _decision_disputed(referral, letterhead.council_name))
    if reader == FAMILY or reader in agreement.signatories:
        request = referral.request
        young = request.referrer.role is not ReferrerRole.PARENT
        b.field("Young person" if young else "Child", request.child.name)
    b.field("Referral", referral.id)

    if agreement.settled_issues:
        b.heading("What was agreed")
        b.items(agreement.settled_issues)

    b.heading("Actions and who will do them")
    if agreement.actions:
        for n, action in enumerate(agreement.actions, start=1):
            b.block(
                [
                    (f"Action {n}", action.description),
                    ("Who will do it", party_label(referral, action.owner)),
                    ("Due by", due_text(action)),
                ]
            )
        b.para(
            "Due dates follow the legal time limits for mediation agreements where they apply, "
            "or the date everyone agreed.",
            small=True,
        )
    else:
        b.para("No actions were recorded.")

    if agreement.open_issues:
        b.heading("Issues not resolved")
        b.items(agreement.open_issues)
        if referral.route is Route.MEDIATION:
            b.para(
                "You can still appeal to the Tribunal about issues that were not resolved. "
                "Your mediation certificate gives the deadline."
            )

    _contact(b, issuer, number=number, letterhead=letterhead)
    title = f"Signed {route} agreement {number}"
    pdf = b.build(
        title=title,
        subject=f"Signed {route} agreement, {issued_on.isoformat()}",
        keywords=("agreement", "SEND", route, number),
        issuer=issuer,
        issued_on=issued_on,
    )
    return RenderedDocument(
        number=number,
        kind="agreement",
        variant=None,
        meeting_id=held.id if held else None,
        issued_on=issued_on,
        title=title,
        filename=f"agreement-{number}.pdf",
        pdf=pdf,
    )


# --------------------------------------------------------------------------- invitation


def _meeting(referral: Referral, meeting_id: str | None) -> Meeting:
    for meeting in referral.meetings:
        if meeting.id == meeting_id:
            return meeting
    raise DocumentUnavailable(f"referral {referral.id} has no meeting {meeting_id}")


def _where(meeting: Meeting) -> tuple[str, str | None]:
    """(where, video link) in plain words."""
    venue = meeting.venue
    if venue.kind is VenueKind.REMOTE:
        if venue.video_link:
            return "Online, by video call", venue.video_link
        return "Online, by video call (we will send you the link before the meeting)", None
    parts = [p for p in (venue.name, venue.address) if p]
    return (", ".join(parts) if parts else "In person (we will confirm the venue)"), None


def render_invitation(
    referral: Referral,
    number: str,
    meeting_id: str | None,
    letterhead: Letterhead,
    reader: str = FAMILY,
) -> RenderedDocument:
    """The invitation as ``reader`` gets it. The family's copy and the mediator's carry the
    family's reasonable adjustments, interpreter and supporter; everyone else's carries only
    what they need to attend, addressed to them."""
    meeting = _meeting(referral, meeting_id)
    request = referral.request
    issuer = letterhead.issuer
    route = _route_name(referral)
    starts = meeting.starts_at.astimezone(LONDON)
    ends = meeting.ends_at.astimezone(LONDON)
    where, link = _where(meeting)
    family = reader == FAMILY
    private = reader in (FAMILY, MEDIATOR)
    b = _Builder()
    b.title(
        f"Invitation to a {route} meeting",
        f"Invitation number {number}",
        None if family else reader_label(referral, reader, meeting),
    )
    independent = (
        "The meeting is run by an independent mediator who is trained in special educational "
        "needs and disability (SEND) and has no connection to the council or to schools. It is "
        "free and confidential."
    )
    if family:
        b.para(f"You are invited to a {route} meeting. {independent}")
    elif reader == MEDIATOR:
        b.para(f"You are booked as the mediator for this {route} meeting.")
    elif reader == SUPPORTER:
        b.para(f"The family has asked you to support them at this {route} meeting. {independent}")
    else:
        b.para(f"You are invited to a {route} meeting with the family. {independent}")
        b.field("What it is about", _decision_disputed(referral, letterhead.council_name))
    b.heading("When")
    b.field("Date", long_date(starts.date()))
    b.field("Time", f"{clock_time(starts)} to {clock_time(ends)} (UK time)")
    minutes = int((meeting.ends_at - meeting.starts_at).total_seconds() // 60)
    b.para(f"The meeting is booked for {duration_text(minutes)}.", small=True)

    b.heading("Where")
    b.field("Place", where)
    if link:
        b.field("Video link", link)
    if meeting.venue.accessibility:
        b.field("Access", meeting.venue.accessibility)

    b.heading("Who will be there")
    people = [f"{meeting.mediator.name}, the mediator"]
    people.append(f"{party_label(referral, FAMILY)}, the family")
    if request.supporter is not None:
        supporter = request.supporter
        people.append(
            f"{supporter.name} ({supporter.relationship}), supporting the family"
            if private or reader == SUPPORTER
            else "someone supporting the family"
        )
    people += [party_label(referral, pid) for pid in meeting.attendees]
    b.items(people)
    if isinstance(request, MediationReferralCreate):
        b.para("The council must send someone who can make decisions about the issues.", small=True)

    if family:
        b.heading("Your supporter")
        if request.supporter is None:
            b.para(
                "You can bring someone to support you, such as a friend, a family member or an "
                "advocate. Please tell us who is coming."
            )
        else:
            b.para("Your supporter is named above. Tell us if that changes.")
    preferences = request.preferences
    if private:
        b.heading("Reasonable adjustments" if family else "Arrangements for the family")
        if preferences.reasonable_adjustments:
            b.field("What we have arranged", preferences.reasonable_adjustments)
        elif family:
            b.para(
                "Tell us if you need anything to take part fully, such as breaks or step-free "
                "access."
            )
        else:
            b.para("The family has asked for no reasonable adjustments.")
        if preferences.interpreter_language:
            b.field("Interpreter", preferences.interpreter_language)
    else:
        b.heading("Taking part")
        b.para(
            f"Tell {issuer.name} if you need anything to take part fully, such as breaks or "
            "step-free access."
        )

    b.heading("Notice")
    b.field("Invitation sent on", long_date(meeting.notice_given_on))
    if meeting.short_notice_consented:
        b.para(
            "You agreed to less than 5 working days' notice of this meeting."
            if family
            else "The family agreed to less than 5 working days' notice of this meeting."
        )
    b.para(
        "A calendar file is attached to the email with this invitation. If you cannot come, "
        "contact us as soon as you can."
    )
    if isinstance(request, DisagreementResolutionReferralCreate):
        b.para("Disagreement resolution is voluntary for everyone taking part.", small=True)

    _contact(b, issuer, number=number, letterhead=letterhead)
    title = f"Invitation to a {route} meeting {number}"
    pdf = b.build(
        title=title,
        subject=f"Invitation to a {route} meeting on {starts.date().isoformat()}",
        keywords=("meeting invitation", "SEND", route, number),
        issuer=issuer,
        issued_on=meeting.notice_given_on,
    )
    calendar = meeting_calendar(
        referral, meeting, number=number, issuer=issuer, where=where, link=link
    )
    return RenderedDocument(
        number=number,
        kind="invitation",
        variant=None,
        meeting_id=meeting.id,
        issued_on=meeting.notice_given_on,
        title=title,
        filename=f"meeting-invitation-{number}.pdf",
        pdf=pdf,
        calendar=calendar,
    )


# --------------------------------------------------------------------------- iCalendar


def meeting_calendar(
    referral: Referral,
    meeting: Meeting,
    *,
    number: str | None,
    issuer: Issuer,
    where: str,
    link: str | None,
    cancelled: bool = False,
) -> bytes:
    """The meeting as a one-event iCalendar file (``models.adapters.ics``): the invitation's, or
    (``cancelled``) the same event's cancellation. No personal data beyond the link."""
    route = _route_name(referral)
    if cancelled:
        description = f"This meeting has been cancelled. {issuer.name} will be in touch."
    else:
        description = f"Invitation {number} from {issuer.name}."
        if link:
            description += f" Join: {link}"
    if issuer.phone:
        description += f" Questions: {issuer.phone}."
    stamped = meeting.cancelled_on if cancelled and meeting.cancelled_on else None
    return calendar_file(
        uid=f"{referral.id}.{meeting.id}@send-referrals",
        starts_at=meeting.starts_at,
        ends_at=meeting.ends_at,
        stamp=start_of_london_day(stamped or meeting.notice_given_on),
        summary=f"{route.capitalize()} meeting ({issuer.name})",
        location=where,
        description=description,
        url=None if cancelled else link,
        cancelled=cancelled,
        reminder=f"{route.capitalize()} meeting tomorrow",
    )


def cancelled_meeting_calendar(referral: Referral, meeting: Meeting, issuer: Issuer) -> bytes:
    """The cancellation of ``meeting``'s calendar entry (same UID, higher SEQUENCE)."""
    where, link = _where(meeting)
    return meeting_calendar(
        referral, meeting, number=None, issuer=issuer, where=where, link=link, cancelled=True
    )


# --------------------------------------------------------------------------- dispatch


def render(
    kind: DocumentKind,
    referral: Referral,
    number: str,
    letterhead: Letterhead,
    *,
    meeting_id: str | None = None,
    reader: str = FAMILY,
) -> RenderedDocument:
    """Render the document ``number`` of ``kind`` from the referral as projected, as
    ``reader`` (``family``, ``mediator``, ``supporter`` or a party id) gets it: the family's
    copy is the document of record."""
    if not number.startswith(f"{PREFIX[kind]}-"):
        raise DocumentUnavailable(f"{number} is not a {kind} number ({PREFIX[kind]}-…)")
    if kind == "certificate":
        return render_certificate(referral, number, letterhead, reader)
    if kind == "agreement":
        return render_agreement(referral, number, letterhead, reader)
    return render_invitation(referral, number, meeting_id, letterhead, reader)
