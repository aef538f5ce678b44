"""``GET /v1/referrals`` (list and search) and ``GET /v1/referrals/{id}/events`` (timeline).

Both read the read model only; neither returns personal data.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import allowed_local_authorities, require_local_authority
from api.bounds import BoundedDate, cursor_signer
from api.deps import ReferralId, SessionDep
from api.errors import Problem, validation_problem
from api.schemas import (
    CertificateBrief,
    EventPage,
    EventRead,
    NextDeadline,
    ReferralPage,
    ReferralSummary,
)
from models.domain.party_links import is_party_actor
from models.domain.referral import Route, Status
from models.domain.transitions import SYSTEM
from models.store import listing

router = APIRouter(prefix="/referrals", tags=["referrals"])


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: list[Status] = Field(
        default=[], description="One or more statuses (repeat the parameter: any of them)."
    )
    route: Route | None = None
    local_authority: str | None = Field(
        default=None, max_length=64, description="The council's code, e.g. E10000015."
    )
    due_after: BoundedDate | None = Field(
        default=None, description="Next deadline on or after this day (inclusive)."
    )
    due_before: BoundedDate | None = Field(
        default=None, description="Next deadline on or before this day (inclusive)."
    )
    breached: bool | None = Field(
        default=None, description="true: any deadline breached; false: none breached."
    )
    created_from: BoundedDate | None = Field(
        default=None, description="Created on or after this day (Europe/London)."
    )
    created_to: BoundedDate | None = Field(
        default=None, description="Created on or before this day (Europe/London)."
    )
    external_reference: str | None = Field(
        default=None,
        max_length=64,
        description="The council's own case reference given at intake (exact match).",
    )
    sort: listing.Sort = Field(
        default=listing.Sort.NEXT_DEADLINE,
        description="`next_deadline` (soonest first; referrals with no open deadline last), "
        "`created` (oldest first) or `-created` (newest first).",
    )
    limit: int = Field(default=50, ge=1, le=200, description="Page size (at most 200).")
    cursor: str | None = Field(
        default=None,
        max_length=1000,
        description="`next_cursor` from the previous page (opaque and signed: a cursor "
        "altered or made up is a 422; same filters and sort).",
    )

    @model_validator(mode="after")
    def _ranges(self) -> ListQuery:
        if self.due_after and self.due_before and self.due_after > self.due_before:
            raise ValueError("due_after must be on or before due_before")
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValueError("created_from must be on or before created_to")
        return self

    def filters(self, councils: frozenset[str] | None) -> listing.Filters:
        return listing.Filters(
            councils=councils,
            status=tuple(s.value for s in self.status),
            route=self.route.value if self.route else None,
            local_authority=self.local_authority,
            due_after=self.due_after,
            due_before=self.due_before,
            breached=self.breached,
            created_from=self.created_from,
            created_to=self.created_to,
            external_reference=self.external_reference,
        )


def _summary(row: dict[str, Any]) -> ReferralSummary:
    due, name = row["next_deadline_on"], row["next_deadline_name"]
    kind, issued = row["certificate_kind"], row["certificate_issued_on"]
    return ReferralSummary(
        id=row["id"],
        route=row["route"],
        status=row["status"],
        local_authority=row["local_authority"],
        external_reference=row["external_reference"],
        next_deadline=NextDeadline(name=name, due_on=due) if due is not None and name else None,
        breached=row["breached"],
        certificate=CertificateBrief(kind=kind, issued_on=issued) if kind and issued else None,
        appeal_deadline=row["appeal_deadline"],
        outcome=row["outcome"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


@router.get(
    "",
    response_model=ReferralPage,
    summary="List and search referrals (no personal data)",
    description="Filters combine with AND. Pages are keyset pages: follow `next_cursor` "
    "(opaque) with the same filters and sort; a page is stable while referrals change. "
    "A key limited to some councils sees only their referrals.",
    responses={
        403: {"description": "The key may not see this local authority's referrals."},
        422: {"description": "Invalid filter or cursor (problem+json naming it)."},
    },
)
async def list_referrals(
    request: Request, session: SessionDep, query: Annotated[ListQuery, Query()]
) -> ReferralPage:
    if query.local_authority is not None:
        require_local_authority(request, query.local_authority)
    filters = query.filters(allowed_local_authorities(request))
    try:
        page = await listing.list_referrals(
            session,
            filters,
            sort=query.sort,
            limit=query.limit,
            cursor=query.cursor,
            signer=cursor_signer(request),
        )
    except listing.BadCursor as exc:
        raise validation_problem([{"field": "query.cursor", "message": str(exc)}]) from exc
    return ReferralPage(items=[_summary(r) for r in page.rows], next_cursor=page.next_cursor)


@router.get(
    "/{referral_id}/events",
    response_model=EventPage,
    summary="The audit timeline: what happened, when, recorded by whom",
    description="Events in order (`seq`). `actor` is the API client that sent the command, "
    "or `system` for what the service did by itself (timers, deemed certificates, breaches). "
    "`data` holds ids, codes and dates only.",
    responses={404: {"description": "Unknown referral."}},
)
async def referral_events(
    session: SessionDep,
    referral_id: ReferralId,
    after: Annotated[
        int, Query(ge=0, le=2**31 - 1, description="Only events with seq above this.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many events.")] = 500,
) -> EventPage:
    if not await listing.referral_exists(session, referral_id):
        raise Problem(404, "Not found", f"No referral {referral_id}.")
    rows = await listing.timeline(session, referral_id, after_seq=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    names = await listing.key_names(session, {r["actor"] for r in rows} - {SYSTEM})
    return EventPage(
        referral_id=referral_id,
        items=[
            EventRead(
                seq=r["seq"],
                type=r["type"],
                occurred_on=r["occurred_on"],
                recorded_at=r["recorded_at"],
                actor=r["actor"],
                actor_type="system"
                if r["actor"] == SYSTEM
                else "party"
                if is_party_actor(r["actor"])
                else "api_client",
                actor_name=names.get(r["actor"]),
                data=r["data"],
            )
            for r in rows
        ],
        next_after=rows[-1]["seq"] if more and rows else None,
    )
