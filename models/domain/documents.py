"""What identifies an issued document: its kind, number, title, links and digest.

Light on purpose (no PDF library): the API uses it to find and describe stored documents,
``models/adapters/pdf.py`` to render them.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Final, Literal

DocumentKind = Literal["certificate", "agreement", "invitation"]
KINDS: Final[tuple[DocumentKind, ...]] = ("certificate", "agreement", "invitation")
PREFIX: Final[dict[DocumentKind, str]] = {
    "certificate": "MC",
    "agreement": "AG",
    "invitation": "MI",
}
KIND_OF_PREFIX: Final[dict[str, DocumentKind]] = {v: k for k, v in PREFIX.items()}
NUMBER_RE: Final = re.compile(r"^(MC|AG|MI)-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}$")
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
