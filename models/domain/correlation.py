"""How a council tells which of its cases a message is about without personal data: its own
case reference (``external_reference``, given at intake) in the subject of every email to
the council and in every webhook."""

from __future__ import annotations

from models.domain.referral import PartyKind, Referral


def council_reference(referral: Referral) -> str | None:
    return referral.request.external_reference


def subject_for(subject: str, referral: Referral, recipient: str) -> str:
    """``subject`` with ``[<reference>]`` added when ``recipient`` is the council's party."""
    reference = council_reference(referral)
    state = referral.party(recipient)
    if reference and state is not None and state.party.kind is PartyKind.LOCAL_AUTHORITY:
        return f"{subject} [{reference}]"
    return subject
