"""Referrals in a given state, built by the real state machine (``transitions``), no workflow.

Each builder runs the same pure functions the workflow runs, so the documents are rendered
from exactly the shapes the workflow projects into the read model.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import TypeAdapter

from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain import intake, timers
from models.domain import transitions as tr
from models.domain.clock import LONDON
from models.domain.commands import Command
from models.domain.referral import (
    MediatorSummary,
    Referral,
    ReferralCreate,
    Venue,
    VenueKind,
)
from tests.factories import mediation_body

CREATE: TypeAdapter[Any] = TypeAdapter(ReferralCreate)
COMMAND: TypeAdapter[Any] = TypeAdapter(Command)
CAL = england_and_wales_calendar(2024, 2032)
MEDIATOR = MediatorSummary(id="med-1", name="Morgan Mediator", send_trained=True)

# Numbers as the workflow makes them (prefix + 4 groups of 4 upper-case hex digits).
_SEQ = itertools.count(1)


def number(prefix: str) -> str:
    raw = f"{next(_SEQ):016X}"
    return f"{prefix}-{raw[:4]}-{raw[4:8]}-{raw[8:12]}-{raw[12:16]}"


def _ctx(today: date) -> tr.Context:
    return tr.Context(today=today, cal=CAL, policy=tr.Policy(), actor="test", new_number=number)


def opened(body: dict[str, Any], received_on: date, referral_id: str = "") -> Referral:
    rid = referral_id or f"00000000-0000-4000-8000-{next(_SEQ):012d}"
    decision = intake.open_referral(
        rid,
        CREATE.validate_python(body),
        received_on=received_on,
        created_at=datetime.combine(received_on, time(9), tzinfo=UTC),
        ctx=_ctx(received_on),
    )
    return decision.referral


def apply(referral: Referral, today: date, name: str, **fields: Any) -> Referral:
    command = COMMAND.validate_python({"command": name, **fields})
    venue = None
    mediator = None
    if name == "book_meeting":
        mediator = MEDIATOR
        link = fields.get("venue", {}).get("video_link")
        venue = Venue(kind=VenueKind.REMOTE, video_link=link)
    return tr.decide(referral, command, _ctx(today), mediator=mediator, venue=venue).referral


def declined(letter_date: date = date(2026, 1, 14), on: date = date(2026, 3, 2)) -> Referral:
    """RULES.md W1: decision 14 Jan 2026, decline 2 Mar 2026 (certificate issued that day)."""
    decision = {"type": "refusal_to_assess", "letter_date": letter_date.isoformat()}
    body = mediation_body(decision=decision)
    referral = opened(body, on)
    referral = apply(referral, on, "information_session")
    return apply(referral, on, "decline_mediation")


def deemed(told: date = date(2026, 11, 27), letter_date: date = date(2026, 11, 10)) -> Referral:
    """RULES.md W5: LA told 27 Nov 2026; no meeting by 27 Dec; deemed certificate on 28 Dec."""
    decision = {"type": "refusal_to_assess", "letter_date": letter_date.isoformat()}
    body = mediation_body(decision=decision)
    referral = opened(body, told)
    referral = apply(referral, told, "request_mediation")
    day31 = told + timedelta(days=31)
    return timers.tick(referral, _ctx(day31)).referral


def section_i(on: date = date(2026, 3, 2)) -> Referral:
    body = mediation_body(
        decision={"type": "plan_contents", "letter_date": "2026-01-14", "sections": ["F", "I"]}
    )
    referral = opened(body, on)
    referral = apply(referral, on, "information_session")
    return apply(referral, on, "decline_mediation")


def booked(
    received: date = date(2026, 3, 2), starts: datetime | None = None, link: str | None = None
) -> Referral:
    body = mediation_body(decision={"type": "refusal_to_assess", "letter_date": "2026-01-14"})
    referral = opened(body, received)
    referral = apply(referral, received, "request_mediation")
    starts = starts or datetime(2026, 3, 16, 10, 0, tzinfo=LONDON)
    venue: dict[str, Any] = {"kind": "remote"}
    if link:
        venue["video_link"] = link
    return apply(
        referral,
        received,
        "book_meeting",
        mediator_id=MEDIATOR.id,
        starts_at=starts.isoformat(),
        venue=venue,
    )


def signed(received: date = date(2026, 3, 2)) -> Referral:
    referral = booked(received, link="https://meet.example.org/abc")
    held_on = date(2026, 3, 16)
    referral = apply(
        referral,
        held_on,
        "record_meeting",
        outcome="agreement",
        held_on=held_on.isoformat(),
        settled_issues=["The council will carry out an EHC needs assessment"],
        agreed_actions=[
            {
                "description": "Tell the family the assessment will go ahead",
                "owner": "la",
                "kind": "assess_notify",
            },
            {
                "description": "Send the SENCO's report to the council",
                "owner": "senco",
                "kind": "agreed_date",
                "due_on": "2026-04-01",
            },
        ],
    )
    return apply(
        referral, held_on, "sign_agreement", on=held_on.isoformat(), signatories=["family", "la"]
    )
