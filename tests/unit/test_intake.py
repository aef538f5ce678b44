"""Opening a referral (``models/domain/intake.py``): the named rule that the LA and ICB cannot
decline mediation (RULES.md §2, rows M1–M11), and that every party may decline DR."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import TypeAdapter

from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain import intake
from models.domain import transitions as tr
from models.domain.commands import Command
from models.domain.referral import Party, PartyAnswer, PartyKind, Referral
from tests.factories import contact, dr_body, mediation_body, opened_referral

TODAY = date(2026, 11, 20)
CAL = england_and_wales_calendar(2025, 2028)
ICB = {
    "id": "icb",
    "kind": "icb",
    "organisation": "Hertfordshire and West Essex ICB",
    "contact": contact("Ira Commissioner", "ira@icb.example.nhs.uk"),
}


def opened(body: dict[str, Any]) -> Referral:
    return opened_referral(body, today=TODAY)


@pytest.mark.parametrize("kind", list(PartyKind))
def test_only_the_council_and_the_icb_cannot_decline_mediation_when_any_party_kind_is_named(
    kind: PartyKind,
) -> None:
    party = Party.model_validate(
        {"kind": kind, "organisation": "An organisation", "contact": contact("A", "a@example.org")}
    )
    expected = kind in (PartyKind.LOCAL_AUTHORITY, PartyKind.ICB)
    assert intake.cannot_decline_mediation(party) is expected


def test_council_and_icb_are_required_and_others_asked_when_a_mediation_referral_opens() -> None:
    referral = opened(
        mediation_body(
            health_care_in_issue=True,
            health_provision_sought="Speech and language therapy",
            icbs=[ICB],
        )
    )
    answers = {p.id: p.answer for p in referral.parties}
    assert answers == {
        "la": PartyAnswer.REQUIRED,
        "icb": PartyAnswer.REQUIRED,
        "senco": PartyAnswer.PENDING,
    }
    assert "party_response" not in tr.allowed_commands(referral)


def test_a_council_may_decline_disagreement_resolution_when_it_is_asked() -> None:
    referral = opened(dr_body())
    council = next(p for p in referral.parties if p.party.kind is PartyKind.LOCAL_AUTHORITY)
    assert council.answer is PartyAnswer.PENDING
    command = TypeAdapter(Command).validate_python(
        {"command": "party_response", "party_id": council.id, "answer": "declined", "reason": "x"}
    )
    ctx = tr.Context(today=TODAY, cal=CAL, policy=tr.Policy())
    declined = tr.decide(referral, command, ctx).referral.party(council.id)
    assert declined is not None
    assert declined.answer is PartyAnswer.DECLINED
