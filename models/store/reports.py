"""The summary report: what a provider reports to its councils, from the read model.

Each figure counts the facts that happened in the period (Europe/London dates, both ends
inclusive), read from the referral rows and the audit timeline (``referral_event``, whose
``data`` holds codes and dates only):

- referrals: received in the period, by route and by outcome (``open`` while not closed);
- certificates: issued in the period, by kind, and how many were issued on time;
- mediations: Mediation-route meetings held in the period, and how many were held within
  the 30 days (on or before the DL-03/DL-05 date set when mediation was requested);
- median days from the mediation request to the meeting (meetings held in the period) and
  to the first certificate after the request (such certificates issued in the period);
- agreements: meetings held in the period with an agreement (full or partial), agreements
  signed in the period;
- agreed actions: completed in the period, how many on time; breached in the period.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter, defaultdict
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.domain.referral import CertificateKind, MeetingOutcome, Outcome, Route
from models.store.tables import ReferralEventRow, ReferralRow, table_of

REFERRALS = table_of(ReferralRow)
EVENTS = table_of(ReferralEventRow)

REQUESTED = "mediation.requested"
CERTIFICATE = "certificate.issued"
MEETING = "meeting.held"
SIGNED = "agreement.signed"
ACTION_DONE = "action.completed"
ACTION_BREACHED = "action.breached"
IN_PERIOD = (CERTIFICATE, MEETING, SIGNED, ACTION_DONE, ACTION_BREACHED)
OPEN = "open"
AGREED = frozenset({MeetingOutcome.AGREEMENT.value, MeetingOutcome.PARTIAL_AGREEMENT.value})


class Figures(BaseModel):
    model_config = ConfigDict(frozen=True)


class Period(Figures):
    from_: date | None = Field(serialization_alias="from", description="First day (inclusive).")
    to: date | None = Field(description="Last day (inclusive).")
    local_authority: str | None = Field(description="A council's code, or null for all.")


class ReferralFigures(Figures):
    received: int
    by_route: dict[str, int]
    by_route_and_outcome: dict[str, dict[str, int]] = Field(
        description="Per route, per outcome (`open`: not closed yet)."
    )


class CertificateFigures(Figures):
    issued: int
    by_kind: dict[str, int]
    issued_on_time: int
    share_on_time: float | None = Field(description="issued_on_time / issued; null if none.")


class MediationFigures(Figures):
    held: int = Field(description="Mediation meetings held in the period.")
    held_within_30_days: int
    share_within_30_days: float | None
    median_days_request_to_meeting: float | None
    median_days_request_to_certificate: float | None


class AgreementFigures(Figures):
    meetings_held: int = Field(description="Meetings held in the period, both routes.")
    meetings_with_agreement: int = Field(description="Full or partial agreement.")
    signed: int


class ActionFigures(Figures):
    completed: int
    completed_on_time: int
    share_on_time: float | None
    breached: int = Field(
        description="Agreed actions that passed their due date in the period (less those "
        "later recorded as done by that date)."
    )


class Summary(Figures):
    period: Period
    referrals: ReferralFigures
    certificates: CertificateFigures
    mediations: MediationFigures
    agreements: AgreementFigures
    actions: ActionFigures


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _median(values: list[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def _between(column: Any, start: date | None, end: date | None) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if start is not None:
        clauses.append(column >= start)
    if end is not None:
        clauses.append(column <= end)
    return clauses


async def summary(
    session: AsyncSession,
    start: date | None,
    end: date | None,
    local_authority: str | None,
    councils: frozenset[str] | None = None,
) -> Summary:
    """The figures for one council, or for every council in ``councils`` (None: all)."""
    r, e = REFERRALS.c, EVENTS.c
    council: list[ColumnElement[bool]] = []
    if local_authority is not None:
        council.append(r.local_authority == local_authority)
    elif councils is not None:
        council.append(r.local_authority.in_(sorted(councils)))

    # Referrals received, by route and outcome.
    conn = await session.connection()
    counts = await conn.execute(
        select(r.route, r.outcome, func.count())
        .where(*_between(r.received_on, start, end), *council)
        .group_by(r.route, r.outcome)
    )
    by_route: Counter[str] = Counter({route.value: 0 for route in Route})
    outcomes = [*(o.value for o in Outcome), OPEN]
    by_outcome: dict[str, Counter[str]] = {
        route.value: Counter(dict.fromkeys(outcomes, 0)) for route in Route
    }
    for route, outcome, n in counts.all():
        by_route[route] += n
        by_outcome.setdefault(route, Counter())[outcome or OPEN] += n

    # What happened in the period, from the timeline.
    happened = await conn.execute(
        select(e.referral_id, e.type, e.occurred_on, e.data, r.route)
        .join(REFERRALS, r.id == e.referral_id)
        .where(e.type.in_(IN_PERIOD), *_between(e.occurred_on, start, end), *council)
        .order_by(e.referral_id, e.seq)
    )
    events = happened.all()

    # Mediation requests and every certificate of the referrals met or certified in the period.
    candidates = (
        select(e.referral_id)
        .join(REFERRALS, r.id == e.referral_id)
        .where(
            e.type.in_((MEETING, CERTIFICATE)),
            *_between(e.occurred_on, start, end),
            *council,
            r.route == Route.MEDIATION.value,
        )
    )
    history = await conn.execute(
        select(e.referral_id, e.type, e.occurred_on, e.data)
        .where(e.type.in_((REQUESTED, CERTIFICATE)), e.referral_id.in_(candidates))
        .order_by(e.referral_id, e.seq)
    )
    requests: dict[str, list[tuple[date, date]]] = defaultdict(list)
    certified: dict[str, list[date]] = defaultdict(list)
    for referral_id, kind, on, data in history.all():
        if kind == REQUESTED:
            requests[referral_id].append((on, date.fromisoformat(data["arrange_by"])))
        else:
            certified[referral_id].append(on)

    def request_before(referral_id: str, on: date) -> tuple[date, date] | None:
        earlier = [q for q in requests.get(referral_id, []) if q[0] <= on]
        return max(earlier) if earlier else None

    certificates: Counter[str] = Counter({kind.value: 0 for kind in CertificateKind})
    on_time = held = within = meetings = agreed = signed = done = done_on_time = 0
    breached: set[tuple[str, str]] = set()  # (referral, action)
    corrected: set[tuple[str, str]] = set()  # breached by the clock, then done by its day
    to_meeting: list[int] = []
    to_certificate: list[int] = []
    for referral_id, kind, on, data, route in events:
        if kind == CERTIFICATE:
            certificates[data["kind"]] += 1
            on_time += bool(data.get("on_time"))
            requested = request_before(referral_id, on)
            if requested is not None and route == Route.MEDIATION.value:
                first = min(d for d in certified[referral_id] if d >= requested[0])
                if first == on:
                    to_certificate.append((on - requested[0]).days)
        elif kind == MEETING:
            meetings += 1
            agreed += data.get("outcome") in AGREED
            requested = request_before(referral_id, on)
            if route == Route.MEDIATION.value and requested is not None:
                held += 1
                within += on <= requested[1]
                to_meeting.append((on - requested[0]).days)
        elif kind == SIGNED:
            signed += 1
        elif kind == ACTION_DONE:
            done += 1
            done_on_time += bool(data.get("on_time"))
            if data.get("breach_corrected"):  # done by its day after all, recorded late
                corrected.add((referral_id, str(data.get("action"))))
        elif kind == ACTION_BREACHED:
            breached.add((referral_id, str(data.get("action"))))

    issued = sum(certificates.values())
    return Summary(
        period=Period(from_=start, to=end, local_authority=local_authority),
        referrals=ReferralFigures(
            received=sum(by_route.values()),
            by_route=dict(by_route),
            by_route_and_outcome={k: dict(v) for k, v in by_outcome.items()},
        ),
        certificates=CertificateFigures(
            issued=issued,
            by_kind=dict(certificates),
            issued_on_time=on_time,
            share_on_time=_share(on_time, issued),
        ),
        mediations=MediationFigures(
            held=held,
            held_within_30_days=within,
            share_within_30_days=_share(within, held),
            median_days_request_to_meeting=_median(to_meeting),
            median_days_request_to_certificate=_median(to_certificate),
        ),
        agreements=AgreementFigures(
            meetings_held=meetings, meetings_with_agreement=agreed, signed=signed
        ),
        actions=ActionFigures(
            completed=done,
            completed_on_time=done_on_time,
            share_on_time=_share(done_on_time, done),
            breached=len(breached - corrected),
        ),
    )


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, inner, out)
    else:
        out.append((prefix, "" if value is None else str(value)))


def to_csv(report: Summary) -> str:
    """The same figures as two columns, ``metric,value`` (dotted names, as in the JSON)."""
    rows: list[tuple[str, str]] = []
    _flatten("", report.model_dump(mode="json", by_alias=True), rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(("metric", "value"))
    writer.writerows(rows)
    return buffer.getvalue()
