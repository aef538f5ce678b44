"""Bounds on what a client may send, so that no input reaches a 500.

- Every date a client sends lies between :data:`EARLIEST` and :data:`LATEST` (a 422 naming
  the field otherwise): date arithmetic near year 1 or 9999 overflows, and no referral,
  letter, birth or meeting is that far away. Query dates use :data:`BoundedDate`; request
  bodies built from the domain's models are checked whole by :func:`check_dates`.
- List cursors are signed (``models/store/cursors.py``) with a key derived from the codec keys, so
  a forged or altered cursor is a 422 too (:func:`cursor_signer`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Any, Final

from fastapi import Request
from pydantic import AfterValidator, BaseModel

from api.deps import codec_of
from api.errors import validation_problem
from models.store.cursors import CursorSigner

EARLIEST: Final = date(1900, 1, 1)
LATEST: Final = date(2199, 12, 31)
RANGE_MESSAGE: Final = f"must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}"


def in_range(value: date) -> bool:
    day = value.date() if isinstance(value, datetime) else value
    return EARLIEST <= day <= LATEST


def _bounded(value: date) -> date:
    if not in_range(value):
        raise ValueError(RANGE_MESSAGE)
    return value


#: A date a client sends in a query: 422 outside 1900-01-01 … 2199-12-31.
BoundedDate = Annotated[date, AfterValidator(_bounded)]


def _dates(value: Any, where: str) -> Iterator[tuple[str, date]]:
    if isinstance(value, date):
        yield where, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _dates(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _dates(item, f"{where}.{index}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _dates(item, f"{where}.{key}")


def check_dates(value: Any, where: str = "body") -> None:
    """422 naming each date (or instant) in ``value`` outside the bounds."""
    errors = [
        {"field": field, "message": RANGE_MESSAGE, "type": "date_range"}
        for field, day in _dates(value, where)
        if not in_range(day)
    ]
    if errors:
        raise validation_problem(errors)


def cursor_signer(request: Request) -> CursorSigner:
    """Signs and checks this API's list cursors (the same in every API process)."""
    return CursorSigner.from_keyring(codec_of(request).keyring)
