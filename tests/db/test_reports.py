"""The summary report's figures from rows and timelines written by hand (SQLite, PostgreSQL).

Every expected figure below is worked out by hand from the facts listed in ``FACTS``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from models.store import reports
from models.store.tables import ReferralEventRow
from tests.conftest import Database
from tests.factories import referral_row

A, B = "E10000015", "E10000016"
R1, R2, R3, R4, R5 = (f"00000000-0000-4000-8000-00000000000{i}" for i in range(1, 6))
D = date.fromisoformat

# (referral, council, route, received_on, outcome, [(type, on, data)])
FACTS: list[tuple[str, str, str, str, str | None, list[tuple[str, str, dict[str, Any]]]]] = [
    (R1, A, "mediation", "2027-01-05", "no_agreement", [
        ("mediation.requested", "2027-01-10", {"arrange_by": "2027-02-09"}),
        ("meeting.held", "2027-01-30", {"meeting": "meeting-1", "outcome": "no_agreement"}),
        ("certificate.issued", "2027-02-01", {"kind": "after_mediation", "on_time": True}),
    ]),
    (R2, A, "mediation", "2027-01-06", "partial_agreement", [
        ("mediation.requested", "2027-01-06", {"arrange_by": "2027-02-05"}),
        ("certificate.issued", "2027-02-06", {"kind": "deemed", "on_time": True}),
        ("meeting.held", "2027-02-20", {"meeting": "meeting-1", "outcome": "partial_agreement"}),
        ("certificate.issued", "2027-02-23", {"kind": "after_mediation", "on_time": False}),
        ("agreement.signed", "2027-02-25", {"actions": {}}),
        ("action.completed", "2027-03-01", {"action": "action-1", "on_time": True}),
        ("action.breached", "2027-03-15", {"action": "action-2"}),
        ("action.completed", "2027-03-20", {"action": "action-2", "on_time": False}),
    ]),
    (R3, A, "mediation", "2027-01-07", "declined_mediation", [
        ("mediation.declined", "2027-01-12", {}),
        ("certificate.issued", "2027-01-12", {"kind": "declined_mediation", "on_time": True}),
    ]),
    (R4, A, "disagreement_resolution", "2027-01-08", None, [
        ("meeting.held", "2027-02-01", {"meeting": "meeting-1", "outcome": "agreement"}),
    ]),
    (R5, B, "mediation", "2027-01-05", None, [
        ("mediation.requested", "2027-01-05", {"arrange_by": "2027-02-04"}),
        ("meeting.held", "2027-01-20", {"meeting": "meeting-1", "outcome": "agreement"}),
    ]),
]  # fmt: skip


@pytest.fixture
async def facts(db: Database) -> Database:
    at = datetime(2027, 1, 5, 9, tzinfo=UTC)
    async with db.sessionmaker() as session:
        for rid, council, route, received, outcome, events in FACTS:
            session.add(
                referral_row(
                    rid,
                    local_authority=council,
                    route=route,
                    received_on=D(received),
                    outcome=outcome,
                    status="closed" if outcome else "tracking_actions",
                )
            )
            for seq, (kind, on, data) in enumerate(events, start=1):
                session.add(
                    ReferralEventRow(
                        referral_id=rid,
                        seq=seq,
                        type=kind,
                        occurred_on=D(on),
                        recorded_at=at,
                        actor="system",
                        data=data,
                    )
                )
        await session.commit()
    return db


async def summary(db: Database, start: str | None, end: str | None, la: str | None) -> Any:
    async with db.sessionmaker() as session:
        result = await reports.summary(
            session, D(start) if start else None, D(end) if end else None, la
        )
    return result.model_dump(mode="json", by_alias=True)


async def test_quarter_for_one_council_counts_each_fact_in_it(facts: Database) -> None:
    got = await summary(facts, "2027-01-01", "2027-03-31", A)
    assert got["period"] == {"from": "2027-01-01", "to": "2027-03-31", "local_authority": A}
    referrals = got["referrals"]
    assert referrals["received"] == 4
    assert referrals["by_route"] == {"mediation": 3, "disagreement_resolution": 1}
    mediation = referrals["by_route_and_outcome"]["mediation"]
    assert {k: v for k, v in mediation.items() if v} == {
        "no_agreement": 1,
        "partial_agreement": 1,
        "declined_mediation": 1,
    }
    dr = referrals["by_route_and_outcome"]["disagreement_resolution"]
    assert {k: v for k, v in dr.items() if v} == {"open": 1}
    assert got["certificates"] == {
        "issued": 4,
        "by_kind": {"declined_mediation": 1, "after_mediation": 2, "deemed": 1},
        "issued_on_time": 3,
        "share_on_time": 0.75,
    }
    assert got["mediations"] == {
        "held": 2,  # R1 and R2; R4 is Disagreement Resolution
        "held_within_30_days": 1,  # R1 on 30 Jan (by 9 Feb); R2 on 20 Feb (after 5 Feb)
        "share_within_30_days": 0.5,
        "median_days_request_to_meeting": 32.5,  # 20 and 45
        "median_days_request_to_certificate": 26.5,  # R1 22; R2's first (deemed) 31
    }
    assert got["agreements"] == {"meetings_held": 3, "meetings_with_agreement": 2, "signed": 1}
    assert got["actions"] == {
        "completed": 2,
        "completed_on_time": 1,
        "share_on_time": 0.5,
        "breached": 1,
    }


async def test_period_bounds_are_inclusive_and_exclude_facts_outside(facts: Database) -> None:
    got = await summary(facts, "2027-02-02", "2027-02-28", A)
    assert got["referrals"]["received"] == 0
    assert got["certificates"]["issued"] == 2  # R2 deemed (6 Feb) and after mediation (23 Feb)
    assert got["certificates"]["share_on_time"] == 0.5
    assert got["mediations"] == {
        "held": 1,
        "held_within_30_days": 0,
        "share_within_30_days": 0.0,
        "median_days_request_to_meeting": 45.0,
        "median_days_request_to_certificate": 31.0,  # the 23 Feb one is not the first
    }
    assert got["agreements"] == {"meetings_held": 1, "meetings_with_agreement": 1, "signed": 1}
    assert got["actions"]["completed"] == 0
    assert got["actions"]["share_on_time"] is None
    one_day = await summary(facts, "2027-02-06", "2027-02-06", A)
    assert one_day["certificates"]["by_kind"]["deemed"] == 1


async def test_all_councils_when_none_is_given(facts: Database) -> None:
    got = await summary(facts, None, None, None)
    assert got["period"] == {"from": None, "to": None, "local_authority": None}
    assert got["referrals"]["received"] == 5
    assert got["mediations"]["held"] == 3
    assert got["mediations"]["held_within_30_days"] == 2
    assert got["mediations"]["median_days_request_to_meeting"] == 20.0  # 15, 20, 45
    other = await summary(facts, None, None, B)
    assert other["referrals"]["received"] == 1
    assert other["certificates"]["issued"] == 0
    assert other["mediations"]["median_days_request_to_certificate"] is None


async def test_csv_has_the_same_figures_as_metric_value_rows(facts: Database) -> None:
    async with facts.sessionmaker() as session:
        report = await reports.summary(session, D("2027-01-01"), D("2027-03-31"), A)
    rows = [line.split(",") for line in reports.to_csv(report).splitlines()]
    assert rows[0] == ["metric", "value"]
    values = dict(rows[1:])
    assert values["period.from"] == "2027-01-01"
    assert values["referrals.by_route_and_outcome.mediation.no_agreement"] == "1"
    assert values["certificates.by_kind.deemed"] == "1"
    assert values["mediations.median_days_request_to_meeting"] == "32.5"
    assert values["actions.share_on_time"] == "0.5"
    assert len(values) == len(rows) - 1  # each metric once


async def test_an_action_breach_corrected_by_a_completion_dated_in_time_is_not_counted(
    db: Database,
) -> None:
    # Due 10 Mar: the clock marks it breached on 11 Mar; on 15 Mar the back office records it
    # done on 9 Mar (a correction). Another action stays breached.
    rid = "00000000-0000-4000-8000-000000000042"
    events: list[tuple[str, str, dict[str, Any]]] = [
        ("action.breached", "2027-03-11", {"action": "a1"}),
        ("action.breached", "2027-03-11", {"action": "a2"}),
        (
            "action.completed",
            "2027-03-09",
            {"action": "a1", "on_time": True, "breach_corrected": True},
        ),
    ]
    async with db.sessionmaker() as session:
        session.add(referral_row(rid, received_on=D("2027-01-05"), status="tracking_actions"))
        for seq, (kind, on, data) in enumerate(events, start=1):
            at = datetime(2027, 3, 15, 9, tzinfo=UTC)
            row = ReferralEventRow(
                referral_id=rid,
                seq=seq,
                type=kind,
                occurred_on=D(on),
                recorded_at=at,
                actor="system",
                data=data,
            )
            session.add(row)
        await session.commit()
    got = await summary(db, "2027-03-01", "2027-03-31", None)
    assert got["actions"]["breached"] == 1
    assert got["actions"]["completed_on_time"] == 1
