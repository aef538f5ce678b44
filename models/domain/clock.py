"""Europe/London calendar dates from instants, and back.

Every legal date in this service is a calendar date in Europe/London (RULES.md, preamble).
``LONDON`` is built here, at import: a ``ZoneInfo`` built inside workflow code fails in the
Temporal sandbox, so workflows import this module through the pass-through.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def london_date(instant: datetime) -> date:
    """The Europe/London calendar date on which ``instant`` falls.

    ``instant`` must be timezone-aware (a naive datetime has no place on the time line, so
    guessing its zone could move a trigger across midnight): ``ValueError`` otherwise.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant must be timezone-aware, got naive {instant.isoformat()}")
    return instant.astimezone(LONDON).date()


def start_of_london_day(d: date) -> datetime:
    """The instant (tz-aware, UTC) at which the Europe/London day ``d`` begins.

    UK clocks change at 01:00 UTC, so local midnight always exists exactly once: it is
    00:00 UTC in winter (GMT) and 23:00 UTC on the previous day in summer (BST).
    """
    return datetime.combine(d, time(0, 0), tzinfo=LONDON).astimezone(UTC)
