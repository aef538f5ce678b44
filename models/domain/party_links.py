"""Personal links: a party answers for themselves, from the email that asks them.

Pure rules (stdlib and pydantic only) for the links the service puts in an email that asks
someone to decide something (``api/pages``; minted by the worker when the email is composed,
stored by ``models/store/party_links.py``):

- **Unguessable**: 32 random bytes (256 bits), URL-safe; only the SHA-256 is looked up, as
  with API keys. The URL holds the token and nothing else: no name, no referral id.
- **Single purpose**: one party, one referral, one decision (:class:`Purpose`), and for a
  meeting or a document, that meeting or document (``subject``).
- **Expiring**: at the end of the decision's own deadline day (Disagreement Resolution: the
  last day to answer), when the meeting starts, or after a set number of days.
- **Revocable**: a later link for the same party and decision supersedes the earlier one (a
  reminder replaces the first email's link); an ending shows the referral's state instead.
- **Used once**: a used link shows what was decided and when, and never records again.

The page sends exactly the command the REST API sends (``models.domain.commands``), with the
party as the recorded actor (:func:`actor_for`): the timeline says who answered.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import date, datetime, timedelta
from enum import StrEnum

from models.domain.clock import start_of_london_day

TOKEN_BYTES = 32
#: ``secrets.token_urlsafe(32)``: 43 characters of base64url, no padding.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
FAMILY = "family"
SUPPORTER = "supporter"


class Purpose(StrEnum):
    """What a link lets its holder decide (stored: never rename a value)."""

    DR_CONSENT = "dr_consent"  # DR: a party says whether it will take part
    MEDIATION_DECISION = "mediation_decision"  # mediation: the family goes ahead or declines
    MEETING_REPLY = "meeting_reply"  # an invitee confirms attendance or asks to rearrange
    DOCUMENT = "document"  # the family reads a document as a web page beside the PDF


class LinkState(StrEnum):
    OPEN = "open"
    USED = "used"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    REVOKED = "revoked"


#: Notification templates whose email asks its recipient to decide, and what they decide.
TEMPLATE_PURPOSES: dict[str, Purpose] = {
    "dr_consent_request": Purpose.DR_CONSENT,
    "dr_consent_reminder": Purpose.DR_CONSENT,
    "family_decision": Purpose.MEDIATION_DECISION,
}

#: Document kinds whose email carries a link to read them as a web page (the family's copy).
DOCUMENT_KINDS = frozenset({"certificate", "agreement", "invitation"})


def new_token() -> str:
    """A fresh link token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """What is stored and looked up (hex SHA-256): a database copy cannot open a page."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def well_formed(token: str) -> bool:
    """A token this service could have issued (checked before any lookup)."""
    return bool(TOKEN_PATTERN.match(token))


def actor_for(party: str) -> str:
    """The timeline's actor for an answer given through a link: ``family``, ``supporter``
    or ``party:<party id>`` (ids only, never a name)."""
    return party if party in (FAMILY, SUPPORTER) else f"party:{party}"


def expires_at(
    purpose: Purpose,
    *,
    sent_at: datetime,
    days: int,
    answer_by: date | None = None,
    meeting_starts: datetime | None = None,
) -> datetime:
    """When a link stops working: the decision's own deadline, else ``days`` after sending.

    - DR consent: the end of the last day to answer (Europe/London), when given;
    - a meeting reply: when the meeting starts;
    - a family decision, a document: ``days`` after the email was first composed.
    """
    if purpose is Purpose.DR_CONSENT and answer_by is not None:
        return start_of_london_day(answer_by + timedelta(days=1))
    if purpose is Purpose.MEETING_REPLY and meeting_starts is not None:
        return meeting_starts
    return sent_at + timedelta(days=days)


def link_state(
    *,
    now: datetime,
    expires: datetime,
    used_at: datetime | None,
    revoked_at: datetime | None,
    superseded: bool,
) -> LinkState:
    """What a link can do now. A used link always shows what was decided, even later."""
    if used_at is not None:
        return LinkState.USED
    if revoked_at is not None:
        return LinkState.SUPERSEDED if superseded else LinkState.REVOKED
    if now >= expires:
        return LinkState.EXPIRED
    return LinkState.OPEN


def slot(purpose: Purpose, party: str, subject: str | None) -> str:
    """The decision a link is for: a newer link for the same slot supersedes older ones."""
    return f"{purpose.value}:{party}:{subject or ''}"


# ---------------------------------------------------------------------------- the pages

#: The steps of each decision's pages: a first question, then the step that sends.
CHOICES: dict[Purpose, dict[str, str]] = {
    Purpose.DR_CONSENT: {"yes": "accept", "no": "decline"},
    Purpose.MEDIATION_DECISION: {"yes": "go-ahead", "no": "decline"},
    Purpose.MEETING_REPLY: {"yes": "attend", "no": "rearrange"},
}

#: The command each sending step records, and the REST command it is.
STEP_COMMANDS: dict[tuple[Purpose, str], str] = {
    (Purpose.DR_CONSENT, "accept"): "party_response",
    (Purpose.DR_CONSENT, "decline"): "party_response",
    (Purpose.MEDIATION_DECISION, "go-ahead"): "request_mediation",
    (Purpose.MEDIATION_DECISION, "decline"): "decline_mediation",
    (Purpose.MEETING_REPLY, "attend"): "meeting_reply",
    (Purpose.MEETING_REPLY, "rearrange"): "meeting_reply",
}


def _text(form: dict[str, str], name: str) -> str | None:
    value = form.get(name, "").strip()
    return value or None


def command_body(
    purpose: Purpose, step: str, party: str, subject: str | None, form: dict[str, str]
) -> dict[str, object]:
    """The body of the REST command a page's step sends (validated by the command's own
    model, so the page and the API refuse the same things). The party and the decision come
    from the link, never from the form: a link answers for its own party only."""
    if purpose is Purpose.DR_CONSENT:
        if step == "accept":
            return {
                "command": "party_response",
                "party_id": party,
                "answer": "accepted",
                "availability": _text(form, "availability"),
                "adjustments": _text(form, "adjustments"),
            }
        return {
            "command": "party_response",
            "party_id": party,
            "answer": "declined",
            "reason": _text(form, "reason"),
        }
    if purpose is Purpose.MEDIATION_DECISION:
        return {"command": "request_mediation" if step == "go-ahead" else "decline_mediation"}
    return {
        "command": "meeting_reply",
        "meeting_id": subject or "",
        "invitee": party,
        "answer": "attending" if step == "attend" else "rearrange",
        "reason": _text(form, "reason") if step == "rearrange" else None,
    }


def is_party_actor(actor: str) -> bool:
    """An answer given through a personal link (see :func:`actor_for`)."""
    return actor in (FAMILY, SUPPORTER) or actor.startswith("party:")
