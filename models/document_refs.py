"""What identifies an issued document: its kind, number, title, links and digest.

Light on purpose (no PDF library): the API uses it to find and describe stored documents,
``models/documents.py`` to render them.
"""

from __future__ import annotations

import hashlib
import re
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


def normalise_number(number: str) -> str:
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
