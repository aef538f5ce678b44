"""Who may mediate a case and where: conflicts of interest and neutral venues (RULES.md §4).

A mediator must be independent of the council and of every organisation in the case; a
meeting is held on neutral ground. The registry route that lists bookable mediators, the
booking activity and the venue registry all ask these functions: each rule is written here
only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


@dataclass(frozen=True)
class Conflicts:
    """What a mediator has a conflict of interest with, in one case."""

    council: bool
    organisations: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.council or bool(self.organisations)


def conflicts_of_interest(
    conflict_local_authorities: Iterable[str],
    conflict_organisations: Iterable[str],
    *,
    council_code: str,
    council_name: str | None = None,
    organisations: Iterable[str] = (),
) -> Conflicts:
    """The mediator's conflicts of interest with a case's council and organisations.

    The mediator's registry entry lists councils (``conflict_local_authorities``, by code) and
    organisations (``conflict_organisations``, by name); either list may name a council by its
    code or its name, so both lists are read as one. A council conflicts when its code or its
    name is listed; an organisation in the case when its name is. Case, repeated spaces and
    the spaces around a name do not matter. Falsy when the mediator is free to mediate.
    """
    listed = {_norm(entry) for entry in (*conflict_local_authorities, *conflict_organisations)}
    council = _norm(council_code) in listed or (
        council_name is not None and _norm(council_name) in listed
    )
    clashing = tuple(sorted(o for o in organisations if _norm(o) in listed))
    return Conflicts(council=council, organisations=clashing)


# What kind of place a registered venue is (stored; never rename a value). No docstring: it
# would become the schema's description in the REST contract.
class VenueType(StrEnum):
    COMMUNITY_CENTRE = "community_centre"
    CHURCH_HALL = "church_hall"
    LIBRARY = "library"
    CONFERENCE_CENTRE = "conference_centre"
    PROVIDER_OFFICE = "provider_office"
    SCHOOL = "school"
    COUNCIL_OFFICE = "council_office"
    OTHER = "other"


#: A party's own premises: never neutral ground for a meeting between the family and it.
PARTY_PREMISES: Final = frozenset({VenueType.SCHOOL, VenueType.COUNCIL_OFFICE})


def neutral_by_default(kind: str) -> bool:
    """A new venue is neutral unless it is a party's own premises."""
    return kind not in PARTY_PREMISES


def not_neutral(kind: str, neutral: bool) -> str | None:
    """Why a venue of ``kind`` cannot be marked ``neutral`` (None when it can)."""
    if neutral and kind in PARTY_PREMISES:
        return f"a {kind.replace('_', ' ')} is not neutral"
    return None


def is_neutral(kind: str, neutral: bool) -> bool:
    """Whether a meeting may be held at a venue of ``kind`` marked ``neutral``."""
    return neutral and kind not in PARTY_PREMISES
