"""The building blocks of every request model: safe text, identifiers, strict scalars, and
cross-field errors that name each field.

Pure (stdlib + pydantic). ``models.domain.referral`` re-exports what callers used to import
from it, so ``from models.domain.referral import Text`` keeps working.

Strictness. FastAPI validates request bodies in Python mode (on the parsed JSON), where
pydantic's lax mode would turn ``"150"`` into ``150``, ``"true"`` into ``True`` and ``0`` into
1 January 1970. Request models therefore use :data:`StrictInt`/:data:`StrictBool` for numbers
and flags, and :data:`IsoDate`/:data:`IsoDateTime` for dates, which take an ISO string (as JSON
carries it) or a ``date``/``datetime`` (as Python callers pass it) and nothing else.
Enumerations stay lax on purpose: JSON carries them as their string values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
)
from pydantic import StrictBool as StrictBool  # re-exported for the request models
from pydantic import StrictInt as StrictInt
from pydantic_core import PydanticCustomError

# Characters never accepted in text that is printed on a legal document, put in an email
# header or shown to another party: C0/C1 controls (line breaks too, in one-line text) and the
# Unicode bidirectional controls that can make a printed name read differently from its bytes.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_LINE_FORBIDDEN = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
_TEXT_FORBIDDEN = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}]")


def _refuse(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        found = pattern.search(value)
        if found is not None:
            raise ValueError(
                f"{what} must not contain control or bidirectional-override characters "
                f"(found U+{ord(found.group()):04X})"
            )
        return value

    return check


_one_line = _refuse(_LINE_FORBIDDEN, "one-line text")
_multi_line = _refuse(_TEXT_FORBIDDEN, "text")

#: Free text (issues, reasons, addresses): line breaks and tabs allowed, other controls not.
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(_multi_line),
]
#: Names and titles: one line (they reach email headers and document headings).
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_one_line),
]
Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
]


def _iso_only(value: Any) -> Any:
    """Dates and instants come as ISO strings (JSON) or as date objects (Python), never as
    numbers: lax pydantic would read ``0`` as 1 January 1970."""
    if isinstance(value, str | date):  # datetime is a date
        return value
    raise PydanticCustomError(
        "iso_date_type", "Input should be an ISO 8601 date string (YYYY-MM-DD or RFC 3339)"
    )


#: A calendar date in a request: ``"2026-11-02"``.
IsoDate = Annotated[date, BeforeValidator(_iso_only)]
#: An instant with its offset in a request: ``"2026-11-02T10:00:00+00:00"``.
IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]


class Strict(BaseModel):
    """Input models: unknown fields are refused, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


CROSS_FIELD = "cross_field"


def refuse(errors: Iterable[tuple[str, str]]) -> None:
    """Raise one validation error listing every ``(field path, message)`` found.

    For model validators: pydantic places their errors at the model itself, so each problem
    carries its field path (relative to the model, dotted: ``facts.2.on``) in the error's
    context; the API's error formatter turns each into its own entry naming that field.
    """
    found = list(errors)
    if not found:
        return
    raise PydanticCustomError(
        CROSS_FIELD,
        "{summary}",
        {
            "summary": "; ".join(f"{field}: {message}" for field, message in found),
            "errors": [{"field": field, "message": message} for field, message in found],
        },
    )


# --------------------------------------------------------------------------- shared enums


class VenueKind(StrEnum):
    REMOTE = "remote"
    IN_PERSON = "in_person"


class MeetingOutcome(StrEnum):
    AGREEMENT = "agreement"
    PARTIAL_AGREEMENT = "partial_agreement"
    NO_AGREEMENT = "no_agreement"


class ActionKind(StrEnum):
    """What an agreed action requires: sets its deadline (RULES.md §3.3, DL-10–DL-12)."""

    NON_APPEALABLE = "non_appealable"  # DL-10: 2 weeks
    ICB_NOTIFY_LA = "icb_notify_la"  # DL-11: 1 week
    CEASE_PLAN = "cease_plan"  # reg 44(2)(a): immediately
    ASSESS_NOTIFY = "assess_notify"  # reg 44(2)(b): 2 weeks
    ASSESS_NOT_NECESSARY = "assess_not_necessary"  # reg 44(2)(b): 10 weeks
    ASSESS_FINAL_PLAN = "assess_final_plan"  # reg 44(2)(b): 14 weeks
    MAKE_PLAN_DRAFT = "make_plan_draft"  # reg 44(2)(c): 5 weeks
    MAKE_PLAN_FINAL = "make_plan_final"  # reg 44(2)(c): 11 weeks
    RECONSIDER = "reconsider"  # reg 44(2)(d): 2 weeks
    AMEND_PLAN = "amend_plan"  # reg 44(2)(e): 5 weeks
    AMEND_SCHOOL = "amend_school"  # reg 44(2)(f): 2 weeks
    CONTINUE_TO_MAINTAIN = "continue_to_maintain"  # reg 44(2)(g): immediately
    AGREED_DATE = "agreed_date"  # DL-12x / DR: the parties' own date, given as due_on


__all__ = [
    "CROSS_FIELD",
    "ActionKind",
    "Identifier",
    "IsoDate",
    "IsoDateTime",
    "MeetingOutcome",
    "ShortText",
    "Strict",
    "StrictBool",
    "StrictInt",
    "Text",
    "VenueKind",
    "refuse",
]
