"""Text printed on legal documents or put in email headers refuses control characters."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from models.domain.referral import ReferralCreate, ShortText, Text

LINE = TypeAdapter(ShortText)
TEXT = TypeAdapter(Text)


@pytest.mark.parametrize(
    "value",
    [
        "X\r\nBcc: a@b.example",
        "Kids\nMediation",
        "tab\there",
        "bell\x07",
        "next\u0085line",
        "evil\u202egnp.exe",
        "isolate\u2066x\u2069",
        "mark\u200f",
        "line\u2028separator",
    ],
)
def test_one_line_text_refuses_control_and_bidi_characters(value: str) -> None:
    with pytest.raises(ValidationError, match="control or bidirectional-override"):
        LINE.validate_python(value)


@pytest.mark.parametrize("value", ["evil\u202egnp", "bell\x07", "form\x0cfeed", "esc\x1b[31m"])
def test_free_text_refuses_control_and_bidi_characters(value: str) -> None:
    with pytest.raises(ValidationError, match="control or bidirectional-override"):
        TEXT.validate_python(value)


def test_free_text_keeps_line_breaks_and_tabs() -> None:
    assert TEXT.validate_python("First line\r\nSecond\tline") == "First line\r\nSecond\tline"


def test_ordinary_names_are_accepted_unchanged() -> None:
    for name in ("Siân O'Brien-Smith", "Zoë Ødegaard", "محمد", "Kids (Hertfordshire)"):
        assert LINE.validate_python(f"  {name} ") == name


def _string_leaves(value: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _string_leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for n, v in enumerate(value) for p in _string_leaves(v, (*path, n))]
    return []


def _with(value: object, path: tuple[str | int, ...], new: str) -> object:
    if not path:
        return new
    head, *rest = path
    if isinstance(value, dict):
        return {k: _with(v, tuple(rest), new) if k == head else v for k, v in value.items()}
    assert isinstance(value, list)
    return [_with(v, tuple(rest), new) if n == head else v for n, v in enumerate(value)]


FREE_TEXT_SAMPLES = {
    "supporter": {"name": "Lin Friend", "relationship": "friend"},
    "preferences": {"reasonable_adjustments": "Step-free", "interpreter_language": "Welsh"},
    "health_provision_sought": "Physiotherapy",
    "facts": [
        {
            "command": "party_response",
            "party_id": "la",
            "answer": "declined",
            "reason": "No",
            "on": "2026-01-05",
        }
    ],
}


@pytest.mark.parametrize("route", ["mediation", "disagreement_resolution"])
def test_every_text_of_a_referral_refuses_bidirectional_overrides_naming_the_field(
    route: str,
) -> None:
    """Every name and text a caller sends (printed on documents, put in email headers)."""
    from tests.factories import dr_body, mediation_body

    body = mediation_body() if route == "mediation" else dr_body()
    body |= {
        k: v
        for k, v in FREE_TEXT_SAMPLES.items()
        if route == "mediation" or k != "health_provision_sought"
    }
    body["referrer"]["contact"]["postal_address"] = "1 Road"
    create = TypeAdapter(ReferralCreate)
    create.validate_python(body)
    free = [
        p
        for p in _string_leaves(body)
        if p[-1] not in FORMATTED
        and p[-2:] != ("referrer", "role")
        and not (len(p) > 2 and p[-3] == "facts" and p[-1] != "reason")
    ]
    assert len(free) > 10
    for path in free:
        with pytest.raises(ValidationError) as caught:
            create.validate_python(_with(body, path, "Kids\u202egnp"))
        tags = {route, "party_response"}  # the unions' tags, which the API leaves out too
        locs = [tuple(str(x) for x in e["loc"] if x not in tags) for e in caught.value.errors()]
        assert tuple(str(x) for x in path) in locs, path


# Codes, ids, dates, emails and enumerations: validated by their own formats.
FORMATTED = frozenset(
    {
        "route",
        "local_authority",
        "email",
        "preferred",
        "date_of_birth",
        "type",
        "letter_date",
        "id",
        "kind",
        "venue",
        "disagreement_type",
        "command",
        "party_id",
        "answer",
        "on",
    }
)
