"""``GET /v1/reports/summary`` (JSON, or CSV with ``format=csv``) and ``/summary.csv``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import allowed_local_authorities, require_local_authority
from api.bounds import BoundedDate
from api.deps import SessionDep
from models.domain.referral import Identifier
from models.store import reports

router = APIRouter(prefix="/reports", tags=["reports"])

CSV = "text/csv; charset=utf-8"


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


class SummaryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: BoundedDate | None = Field(
        default=None, alias="from", description="First day (inclusive); default: no limit."
    )
    to: BoundedDate | None = Field(
        default=None, description="Last day (inclusive); default: no limit."
    )
    local_authority: Identifier | None = Field(
        default=None, description="Only this council's referrals (its code, e.g. E10000015)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> SummaryQuery:
        if self.from_ and self.to and self.from_ > self.to:
            raise ValueError("from must be on or before to")
        return self


class SummaryFormatQuery(SummaryQuery):
    format: Format = Field(
        default=Format.JSON, description="`csv` for the same figures as `metric,value` rows."
    )


DESCRIPTION = (
    (reports.__doc__ or "").split("\n\n", 1)[1]
    + "\nA key limited to some councils gets their figures only (`local_authority` null "
    "means all of those councils).\n\nCSV: `GET /v1/reports/summary.csv` (or `?format=csv`) "
    "returns the same figures as "
    "`metric,value` rows, with dotted metric names as in the JSON (e.g. "
    "`certificates.by_kind.deemed`); empty value = null."
)
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"example": "metric,value\r\nreferrals.received,12\r\n"}},
        "description": "The summary (JSON, or CSV with format=csv).",
    },
    403: {"description": "The key may not see this local authority's figures."},
    422: {"description": "Invalid parameter (problem+json naming it)."},
}


def _csv(report: reports.Summary) -> Response:
    period = report.period
    name = "-".join(
        [
            "summary",
            period.local_authority or "all",
            period.from_.isoformat() if period.from_ else "start",
            period.to.isoformat() if period.to else "now",
        ]
    )
    return Response(
        reports.to_csv(report),
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


async def _summary(request: Request, session: SessionDep, query: SummaryQuery) -> reports.Summary:
    if query.local_authority is not None:
        require_local_authority(request, query.local_authority)
    return await reports.summary(
        session,
        query.from_,
        query.to,
        query.local_authority,
        allowed_local_authorities(request),
    )


@router.get(
    "/summary",
    response_model=reports.Summary,
    summary="Summary report: referrals, certificates, mediations, agreements, actions",
    description=DESCRIPTION,
    responses=CSV_RESPONSE,
)
async def summary(
    request: Request, session: SessionDep, query: Annotated[SummaryFormatQuery, Query()]
) -> reports.Summary | Response:
    report = await _summary(request, session, query)
    return _csv(report) if query.format is Format.CSV else report


@router.get(
    "/summary.csv",
    response_class=Response,
    summary="Summary report as CSV",
    description="The same figures as `GET /v1/reports/summary`, as `metric,value` rows.",
    responses=CSV_RESPONSE,
)
async def summary_csv(
    request: Request, session: SessionDep, query: Annotated[SummaryQuery, Query()]
) -> Response:
    return _csv(await _summary(request, session, query))
