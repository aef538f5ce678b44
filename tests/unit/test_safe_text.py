"""Text printed on legal documents or put in email headers refuses control characters."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from models.domain.referral import ShortText, Text

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
