"""Conflicts of interest and neutral venues (``models/domain/mediators.py``), written once for
the bookable-mediator list, the booking activity and the venue registry."""

from __future__ import annotations

import pytest

from models.domain.mediators import (
    VenueType,
    conflicts_of_interest,
    is_neutral,
    neutral_by_default,
    not_neutral,
)

CODE = "E10000015"
NAME = "Hertfordshire County Council"


@pytest.mark.parametrize(
    ("councils", "organisations"),
    [
        pytest.param([CODE.lower()], [], id="code-among-councils"),
        pytest.param([], [f"  {NAME.upper()} "], id="name-among-organisations"),
        pytest.param([NAME], [], id="name-among-councils"),
        pytest.param([], [CODE], id="code-among-organisations"),
    ],
)
def test_council_conflicts_when_its_code_or_name_is_in_either_list(
    councils: list[str], organisations: list[str]
) -> None:
    found = conflicts_of_interest(councils, organisations, council_code=CODE, council_name=NAME)
    assert found.council
    assert found


def test_organisations_in_the_case_conflict_when_listed_by_name() -> None:
    found = conflicts_of_interest(
        ["E10000016"],
        ["oakfield  primary school"],
        council_code=CODE,
        council_name=NAME,
        organisations=["Oakfield Primary School", "Elm College", NAME],
    )
    assert not found.council
    assert found.organisations == ("Oakfield Primary School",)


def test_mediator_is_free_when_nothing_in_the_case_is_listed() -> None:
    found = conflicts_of_interest(
        ["E10000016"], ["Elm College"], council_code=CODE, organisations=["Oakfield"]
    )
    assert not found


@pytest.mark.parametrize("kind", list(VenueType))
def test_party_premises_are_never_neutral_when_a_venue_is_registered(kind: VenueType) -> None:
    premises = kind in (VenueType.SCHOOL, VenueType.COUNCIL_OFFICE)
    assert neutral_by_default(kind) is not premises
    assert (not_neutral(kind, True) is not None) is premises
    assert not_neutral(kind, False) is None
    assert is_neutral(kind, True) is not premises
    assert not is_neutral(kind, False)
