"""The documents a referral issues: who receives each, its number, title, links and digest.

Light on purpose (no PDF library): the state machine decides here who receives a
certificate, an invitation or an agreement, the workflow numbers them with
:func:`document_number`, the API finds and describes stored documents, and
``models/adapters/pdf.py`` renders them.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Final, Literal

from models.domain.referral import Agreement, MediationReferralCreate, Meeting, Referral

DocumentKind = Literal["certificate", "agreement", "invitation"]
KINDS: Final[tuple[DocumentKind, ...]] = ("certificate", "agreement", "invitation")
PREFIX: Final[dict[DocumentKind, str]] = {
    "certificate": "MC",
    "agreement": "AG",
    "invitation": "MI",
}
KIND_OF_PREFIX: Final[dict[str, DocumentKind]] = {v: k for k, v in PREFIX.items()}
NUMBER_RE: Final = re.compile(r"^(MC|AG|MI)-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}$")


def document_number(prefix: str, raw_hex: str) -> str:
    """A document's number: its kind's prefix and 16 hex digits in four groups
    (``MC-1A2B-3C4D-5E6F-7A8B``), from 128 random bits the workflow draws
    (``workflow.uuid4()``, the same on every replay): unguessable, and never personal data."""
    raw = raw_hex.upper()
    return f"{prefix}-{raw[:4]}-{raw[4:8]}-{raw[8:12]}-{raw[12:16]}"


# --------------------------------------------------------------------------- recipients
# Who receives what: "family" (the parent or young person), "mediator", "supporter", or a
# party's id. The order is the order of sending.

FAMILY: Final = "family"
MEDIATOR: Final = "mediator"
SUPPORTER: Final = "supporter"


def council_contacts(referral: Referral) -> tuple[str, ...]:
    """The council's own contact (Mediation); none in Disagreement Resolution."""
    request = referral.request
    if isinstance(request, MediationReferralCreate) and request.local_authority_contact.id:
        return (request.local_authority_contact.id,)
    return ()


def certificate_recipients(referral: Referral) -> tuple[str, ...]:
    """A mediation certificate goes to the family, and a copy to the council."""
    return (FAMILY, *council_contacts(referral))


def invitation_recipients(referral: Referral, meeting: Meeting) -> tuple[str, ...]:
    """An invitation goes to the family, every party invited to the meeting, the mediator and
    (when the family named one) their supporter, each once."""
    supporter = (SUPPORTER,) if referral.request.supporter else ()
    return tuple(dict.fromkeys((FAMILY, *meeting.attendees, MEDIATOR, *supporter)))


def agreement_recipients(agreement: Agreement) -> tuple[str, ...]:
    """A signed agreement goes to the family and everyone who signed it, each once."""
    return tuple(dict.fromkeys((FAMILY, *agreement.signatories)))


PDF: Final = "application/pdf"
ICS: Final = "text/calendar"

TYPE_TITLES: Final[dict[DocumentKind, str]] = {
    "certificate": "Mediation certificate",
    "agreement": "Signed agreement",
    "invitation": "Meeting invitation",
}


def title_of(kind: str) -> str:
    """'Mediation certificate' for 'certificate' (and so on); unknown kinds as they are."""
    for known, title in TYPE_TITLES.items():
        if known == kind:
            return title
    return kind


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_SEPARATORS: Final = re.compile(r"[\s\-\u2010-\u2015]+")


def normalise_number(number: str) -> str:
    """A number as people type it — any case, with or without dashes or spaces
    (``mc 1a2b 3c4d-5e6f7a8b``) — in its printed form (``MC-1A2B-3C4D-5E6F-7A8B``)."""
    bare = _SEPARATORS.sub("", number).upper()
    if len(bare) == 18 and bare[:2] in KIND_OF_PREFIX:
        return "-".join([bare[:2], bare[2:6], bare[6:10], bare[10:14], bare[14:]])
    return number.strip().upper()


def kind_of(number: str) -> DocumentKind | None:
    """The document kind a well-formed number stands for, else ``None``."""
    number = normalise_number(number)
    if not NUMBER_RE.match(number):
        return None
    return KIND_OF_PREFIX[number[:2]]


def document_url(base_url: str, number: str) -> str:
    return f"{base_url.rstrip('/')}/v1/documents/{number}"


def verify_url(base_url: str, number: str) -> str:
    return f"{document_url(base_url, number)}/verify"


MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def long_date(d: date) -> str:
    """GOV.UK style, locale-free: 'Thursday 5 March 2026'."""
    return f"{DAYS[d.weekday()]} {d.day} {MONTHS[d.month - 1]} {d.year}"
