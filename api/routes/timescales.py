"""``POST /v1/timescales``: the deadline calculator of RULES.md §3."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SettingsDep
from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain.timescales import (
    TimescalesRequest,
    TimescalesResponse,
    compute_timescales,
    years_needed,
)

router = APIRouter(tags=["timescales"])


@router.post(
    "/timescales",
    response_model_exclude_none=True,
    summary="Every statutory deadline that the given trigger dates determine",
    description=(
        "Give any of the trigger dates; the answer holds each deadline those dates determine "
        "(a name is present only when its inputs are). Counting rules: RULES.md §3 — working "
        "days exclude weekends and England & Wales bank holidays, months follow the "
        "corresponding-date rule, and the appeal deadline rolls forward under HESC rule 12."
    ),
)
async def calculate(request: TimescalesRequest, settings: SettingsDep) -> TimescalesResponse:
    first, last = years_needed(request)
    calendar = england_and_wales_calendar(first, last, settings.extra_bank_holidays)
    return compute_timescales(request, calendar)
