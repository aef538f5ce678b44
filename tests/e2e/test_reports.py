"""The summary report over real HTTP, after walking referrals through the real workflow."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.keys import create_key
from tests.conftest import Stack
from tests.e2e.helpers import command, create, london_at, ok, today
from tests.factories import CHILD_NAME, council_bodies, dr_body, mediation_body


async def new_council(http: httpx.AsyncClient) -> str:
    provider, council = council_bodies()
    await ok(await http.post("/v1/providers", json=provider), 201)
    await ok(await http.post("/v1/local-authorities", json=council), 201)
    code: str = council["code"]
    return code


async def run(http: httpx.AsyncClient, rid: str, name: str, body: Any = None) -> dict[str, Any]:
    return await ok(await command(http, rid, name, body))


@pytest.fixture(scope="module")
async def walked(stack: Stack) -> dict[str, Any]:
    """Four referrals in a council of their own, each taken down a different path."""
    http = stack.http
    code = await new_council(http)
    mediator = await ok(
        await http.post("/v1/mediators", json={"name": "Report Mediator", "send_trained": True}),
        201,
    )
    day = today()
    ago = {n: (day - timedelta(days=n)).isoformat() for n in (10, 12, 15, 20)}

    declined = await create(http, mediation_body(local_authority=code))
    await run(http, declined["id"], "information-session")
    declined = await run(http, declined["id"], "decline-mediation")

    def booking() -> dict[str, Any]:
        return {
            "mediator_id": mediator["id"],
            "starts_at": london_at(day, 10),
            "notice_given_on": ago[12],
            "short_notice_consented": True,
        }

    # Mediation requested 15 days ago, held today, no agreement: certificate today.
    unresolved = await create(http, mediation_body(local_authority=code, received_on=ago[20]))
    await run(http, unresolved["id"], "request-mediation", {"on": ago[15]})
    await run(http, unresolved["id"], "book-meeting", booking())
    unresolved = await run(http, unresolved["id"], "record-meeting", {"outcome": "no_agreement"})

    # Requested 10 days ago, held today, agreement signed, its one action completed.
    agreed = await create(http, mediation_body(local_authority=code, received_on=ago[20]))
    await run(http, agreed["id"], "request-mediation", {"on": ago[10]})
    await run(http, agreed["id"], "book-meeting", booking())
    action = {"description": "Issue the amended plan", "owner": "la", "kind": "non_appealable"}
    await run(
        http, agreed["id"], "record-meeting", {"outcome": "agreement", "agreed_actions": [action]}
    )
    await run(http, agreed["id"], "sign-agreement", {"signatories": ["family", "la"]})
    agreed = await run(http, agreed["id"], "complete-action", {"action_id": "action-1"})

    dr = await create(http, dr_body(local_authority=code))
    return {
        "code": code,
        "declined": declined,
        "unresolved": unresolved,
        "agreed": agreed,
        "dr": dr,
        "from": (day - timedelta(days=30)).isoformat(),
        "to": day.isoformat(),
    }


async def test_summary_counts_the_council_s_referrals_by_what_happened(
    stack: Stack, walked: dict[str, Any]
) -> None:
    params = {"from": walked["from"], "to": walked["to"], "local_authority": walked["code"]}
    response = await stack.http.get("/v1/reports/summary", params=params)
    report = await ok(response)
    assert CHILD_NAME not in response.text
    assert report["period"] == {
        "from": walked["from"],
        "to": walked["to"],
        "local_authority": walked["code"],
    }

    referrals = report["referrals"]
    assert referrals["received"] == 4
    assert referrals["by_route"] == {"mediation": 3, "disagreement_resolution": 1}
    outcomes = {
        route: {k: v for k, v in counts.items() if v}
        for route, counts in referrals["by_route_and_outcome"].items()
    }
    assert walked["agreed"]["outcome"] == "agreement"
    assert outcomes == {
        "mediation": {"declined_mediation": 1, "no_agreement": 1, "agreement": 1},
        "disagreement_resolution": {"open": 1},
    }

    # A16: the full agreement got its certificate too.
    issued = [walked[k]["certificate"] for k in ("declined", "unresolved", "agreed")]
    on_time = sum(c["on_time"] for c in issued)
    assert report["certificates"] == {
        "issued": 3,
        "by_kind": {"declined_mediation": 1, "after_mediation": 2, "deemed": 0},
        "issued_on_time": on_time,
        "share_on_time": on_time / 3,
    }
    assert report["mediations"] == {
        "held": 2,
        "held_within_30_days": 2,
        "share_within_30_days": 1.0,
        "median_days_request_to_meeting": 12.5,  # 15 and 10 days
        "median_days_request_to_certificate": 12.5,  # requested 15 and 10 days ago, issued today
    }
    assert report["agreements"] == {"meetings_held": 2, "meetings_with_agreement": 1, "signed": 1}
    assert report["actions"] == {
        "completed": 1,
        "completed_on_time": 1,
        "share_on_time": 1.0,
        "breached": 0,
    }


async def test_summary_leaves_out_what_happened_after_the_period(
    stack: Stack, walked: dict[str, Any]
) -> None:
    yesterday = (today() - timedelta(days=1)).isoformat()
    params = {"from": walked["from"], "to": yesterday, "local_authority": walked["code"]}
    report = await ok(await stack.http.get("/v1/reports/summary", params=params))
    assert report["referrals"]["received"] == 2  # the two received 20 days ago
    assert report["certificates"]["issued"] == 0
    assert report["mediations"]["held"] == 0
    assert report["mediations"]["median_days_request_to_meeting"] is None
    assert report["actions"]["completed"] == 0


async def test_csv_export_has_the_same_figures(stack: Stack, walked: dict[str, Any]) -> None:
    params = {"from": walked["from"], "to": walked["to"], "local_authority": walked["code"]}
    report = await ok(await stack.http.get("/v1/reports/summary", params=params))
    dotted = await stack.http.get("/v1/reports/summary.csv", params=params)
    formatted = await stack.http.get("/v1/reports/summary", params={**params, "format": "csv"})
    for response in (dotted, formatted):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        assert walked["code"] in response.headers["content-disposition"]
    assert dotted.text == formatted.text
    rows = list(csv.reader(io.StringIO(dotted.text)))
    assert rows[0] == ["metric", "value"]
    values = dict(rows[1:])
    assert values["period.local_authority"] == walked["code"]
    assert values["referrals.received"] == str(report["referrals"]["received"])
    assert values["referrals.by_route_and_outcome.mediation.agreement"] == "1"
    assert values["certificates.by_kind.after_mediation"] == "2"
    assert values["mediations.median_days_request_to_meeting"] == "12.5"
    assert values["actions.completed_on_time"] == "1"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2027-02-01", "to": "2027-01-01"}, "query"),
        ({"from": "01/02/2027"}, "query.from"),
        ({"format": "xml"}, "query.format"),
        ({"council": "E10000015"}, "query.council"),
        ({"local_authority": "=cmd()"}, "query.local_authority"),
    ],
    ids=["from-after-to", "bad-date", "format", "unknown", "formula"],
)
async def test_bad_report_query_is_422_naming_the_parameter(
    stack: Stack, params: dict[str, str], field: str
) -> None:
    response = await stack.http.get("/v1/reports/summary", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_key_limited_to_a_council_gets_only_its_figures(
    stack: Stack, walked: dict[str, Any]
) -> None:
    key = await create_key(
        stack.db.sessionmaker,
        name="council-reporting",
        scopes=["reports:read"],
        local_authorities=[walked["code"]],
    )
    headers = {"Authorization": f"Bearer {key.token}"}
    params = {"from": walked["from"], "to": walked["to"]}
    async with httpx.AsyncClient(base_url=stack.base_url, headers=headers) as http:
        mine = await ok(await http.get("/v1/reports/summary", params=params))
        assert mine["period"]["local_authority"] is None
        assert mine["referrals"]["received"] == 4  # only this council's, not the whole stack's
        assert mine["certificates"]["issued"] == 3
        other = await http.get(
            "/v1/reports/summary.csv", params={**params, "local_authority": "E10000015"}
        )
        assert other.status_code == 403
