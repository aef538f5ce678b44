"""A mediator's availability: weekly working hours and dates off, in Europe/London.

Stored on the mediator (``working_hours``, ``unavailable``) and checked when a meeting is
booked. No working hours listed means no weekly limit; dates off always apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from models.domain.clock import LONDON


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


WEEKDAYS: tuple[Weekday, ...] = tuple(Weekday)  # index = date.weekday()


class WorkingHours(BaseModel):
    """One weekly window, local time in Europe/London (e.g. monday 09:00–17:00)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weekday: Weekday
    start: time = Field(description="Local start, e.g. 09:00.")
    end: time = Field(description="Local end, e.g. 17:00; later than start.")

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("give local times (Europe/London) without an offset")
        if self.end <= self.start:
            raise ValueError("end must be later than start")
        return self

    def label(self) -> str:
        return f"{self.weekday.value.title()} {self.start:%H:%M}–{self.end:%H:%M}"


class DatesOff(BaseModel):
    """Days the mediator cannot take a meeting, both ends inclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    starts_on: date
    ends_on: date

    @model_validator(mode="after")
    def _ordered(self) -> DatesOff:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on must be on or after starts_on")
        return self


HOURS: TypeAdapter[list[WorkingHours]] = TypeAdapter(list[WorkingHours])
DATES_OFF: TypeAdapter[list[DatesOff]] = TypeAdapter(list[DatesOff])


def parse_hours(raw: Sequence[Any]) -> list[WorkingHours]:
    return HOURS.validate_python(list(raw))


def parse_dates_off(raw: Sequence[Any]) -> list[DatesOff]:
    return DATES_OFF.validate_python(list(raw))


def unavailability(
    hours: Sequence[WorkingHours],
    dates_off: Sequence[DatesOff],
    starts_at: datetime,
    ends_at: datetime,
) -> str | None:
    """Why the mediator cannot take a meeting from ``starts_at`` to ``ends_at``, or None.

    The reason names the mediator's field that refuses it (``unavailable`` or
    ``working_hours``).
    """
    start = starts_at.astimezone(LONDON)
    end = ends_at.astimezone(LONDON)
    last_day = (end - timedelta(microseconds=1)).date()
    for off in dates_off:
        if off.starts_on <= last_day and start.date() <= off.ends_on:
            return (
                f"is unavailable from {off.starts_on.isoformat()} to {off.ends_on.isoformat()} "
                "(unavailable)"
            )
    if not hours:
        return None
    when = (
        f"{start:%A %Y-%m-%d %H:%M}–{end:%H:%M} (Europe/London)"
        if last_day == start.date()
        else f"{start:%A %Y-%m-%d %H:%M} to {end:%A %Y-%m-%d %H:%M} (Europe/London)"
    )
    windows = ", ".join(w.label() for w in hours)
    refusal = f"is not available {when}: outside their working_hours ({windows})"
    if last_day != start.date():
        return refusal
    end_time = time.max if end.date() != start.date() else end.time()
    weekday = WEEKDAYS[start.weekday()]
    if any(w.weekday is weekday and w.start <= start.time() and end_time <= w.end for w in hours):
        return None
    return refusal
