"""Builders for referral bodies and registry rows used across the test tiers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain import intake
from models.domain.referral import Referral, ReferralCreate
from models.domain.transitions import Context, Policy
from models.store.tables import MediatorRow, ReferralRow, VenueRow

HERTS = "E10000015"
CHILD_NAME = "Ada Testchild-Quintero"
CHILD_DOB = date(2015, 3, 9)


def contact(name: str, email: str) -> dict[str, Any]:
    return {"name": name, "email": email, "preferred": "email"}


def mediation_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "route": "mediation",
        "local_authority": HERTS,
        "referrer": {
            "role": "parent",
            "contact": contact("Grace Testparent", "grace.parent@example.org"),
            "relationship_to_child": "mother",
        },
        "child": {"name": CHILD_NAME, "date_of_birth": CHILD_DOB.isoformat()},
        "decision": {"type": "refusal_to_assess", "letter_date": "2026-11-02"},
        "mediation_issues": ["The council refused to carry out an EHC needs assessment"],
        "local_authority_contact": {
            "id": "la",
            "kind": "local_authority",
            "organisation": "Hertfordshire County Council",
            "role": "SEN officer",
            "contact": contact("Sam Officer", "sam.officer@example.gov.uk"),
        },
        "invitees": [
            {
                "id": "senco",
                "kind": "school",
                "organisation": "Oakfield Primary School",
                "role": "SENCO",
                "contact": contact("Pat Senco", "senco@oakfield.example.sch.uk"),
            }
        ],
        "supporter": {"name": "Lin Friend", "relationship": "friend"},
        "preferences": {"venue": "remote", "reasonable_adjustments": "Step-free access"},
    }
    body.update(overrides)
    return body


def dr_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "route": "disagreement_resolution",
        "local_authority": HERTS,
        "referrer": {
            "role": "parent",
            "contact": contact("Grace Testparent", "grace.parent@example.org"),
        },
        "child": {"name": CHILD_NAME, "date_of_birth": CHILD_DOB.isoformat()},
        "disagreement_type": "sen_provision",
        "has_ehc_plan": False,
        "issues": ["Support in class is not being provided as agreed"],
        "parties": [
            {
                "id": "school",
                "kind": "school",
                "organisation": "Oakfield Primary School",
                "role": "Headteacher",
                "contact": contact("Kim Head", "head@oakfield.example.sch.uk"),
            },
            {
                "id": "la",
                "kind": "local_authority",
                "organisation": "Hertfordshire County Council",
                "role": "SEN officer",
                "contact": contact("Sam Officer", "sam.officer@example.gov.uk"),
            },
        ],
    }
    body.update(overrides)
    return body


async def seed_registry(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """Mediators (one trained, one conflicted, one untrained) and venues; returns their ids."""
    suffix = uuid.uuid4().hex[:8]
    ids = {
        "mediator": f"med-ok-{suffix}",
        "conflicted": f"med-conflict-{suffix}",
        "school_conflict": f"med-school-{suffix}",
        "untrained": f"med-untrained-{suffix}",
        "venue": f"venue-hall-{suffix}",
        "school_venue": f"venue-school-{suffix}",
    }
    now = datetime.now(UTC)
    async with sessionmaker() as session:
        session.add_all(
            [
                MediatorRow(
                    id=ids["mediator"],
                    name="Morgan Mediator",
                    send_trained=True,
                    accreditation="CMC registered",
                    conflict_local_authorities=[],
                    conflict_organisations=[],
                    created_at=now,
                ),
                MediatorRow(
                    id=ids["conflicted"],
                    name="Cass Formerofficer",
                    send_trained=True,
                    conflict_local_authorities=[HERTS],
                    conflict_organisations=[],
                    created_at=now,
                ),
                MediatorRow(
                    id=ids["school_conflict"],
                    name="Rowan Governor",
                    send_trained=True,
                    conflict_local_authorities=[],
                    conflict_organisations=["Oakfield Primary School"],
                    created_at=now,
                ),
                MediatorRow(
                    id=ids["untrained"],
                    name="Uma Untrained",
                    send_trained=False,
                    conflict_local_authorities=[],
                    conflict_organisations=[],
                    created_at=now,
                ),
                VenueRow(
                    id=ids["venue"],
                    name="Hatfield Community Centre",
                    address="1 Example Road, Hatfield",
                    kind="community_centre",
                    neutral=True,
                    accessibility="Step-free, hearing loop",
                    created_at=now,
                ),
                VenueRow(
                    id=ids["school_venue"],
                    name="Oakfield Primary School hall",
                    address="Oakfield",
                    kind="school",
                    neutral=False,
                    created_at=now,
                ),
            ]
        )
        await session.commit()
    return ids


def referral_row(referral_id: str | None = None, **overrides: Any) -> ReferralRow:
    """A read-model row as the projection writes it (listing columns; empty snapshot)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": referral_id or str(uuid.uuid4()),
        "route": "mediation",
        "status": "awaiting_information_session",
        "local_authority": HERTS,
        "version": 1,
        "received_on": now.date(),
        "created_at": now,
        "updated_at": now,
        "next_deadline_on": None,
        "next_deadline_name": None,
        "breached": False,
        "snapshot": {},
    }
    values.update(overrides)
    return ReferralRow(**values)


def council_bodies(
    *, action_working_days: int = 5, name: str = "Testshire County Council"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new provider and a new council it serves (unique ids): POST them in that order."""
    suffix = uuid.uuid4().hex[:8].upper()
    provider = {
        "id": f"provider-{suffix.lower()}",
        "name": f"Test Mediation Service {suffix}",
        "phone": "01234 567890",
        "email": "mediation@example.org",
        "office_hours": "Monday to Friday, 9am to 5pm",
        "referral_action_working_days": action_working_days,
    }
    council = {
        "code": f"T{suffix}",
        "name": f"{name} {suffix}",
        "icbs": ["NHS Test Integrated Care Board"],
        "provider_id": provider["id"],
    }
    return provider, council


def opened_referral(body: dict[str, Any], *, today: date, policy: Policy | None = None) -> Referral:
    """The referral ``body`` opens, received ``today`` (the domain's intake, no workflow)."""
    request = TypeAdapter(ReferralCreate).validate_python(body)
    cal = england_and_wales_calendar(today.year - 1, today.year + 2)
    return intake.open_referral(
        "r-1",
        request,
        received_on=today,
        created_at=datetime.combine(today, datetime.min.time(), tzinfo=UTC),
        ctx=Context(today=today, cal=cal, policy=policy or Policy()),
    ).referral
