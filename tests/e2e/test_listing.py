"""Listing, search and the audit timeline over real HTTP (dev server, worker, database)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.keys import create_key
from tests.conftest import Stack
from tests.e2e.helpers import command, create, ok, today
from tests.factories import CHILD_NAME, council_bodies, dr_body, mediation_body

PERSONAL = (CHILD_NAME, "Grace Testparent", "grace.parent@example.org", "Sam Officer")


async def new_council(http: httpx.AsyncClient, **kwargs: Any) -> str:
    provider, council = council_bodies(**kwargs)
    await ok(await http.post("/v1/providers", json=provider), 201)
    await ok(await http.post("/v1/local-authorities", json=council), 201)
    code: str = council["code"]
    return code


async def listed(http: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    return await ok(await http.get("/v1/referrals", params=params))


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


@pytest.fixture(scope="module")
async def council_cases(stack: Stack) -> dict[str, Any]:
    """One council of our own with three referrals: late (breached), declined, DR."""
    http = stack.http
    code = await new_council(http)
    late = await create(
        http,
        mediation_body(
            local_authority=code,
            decision={"type": "cease_to_maintain", "letter_date": "2026-08-03"},
        ),
    )
    declined = await create(http, mediation_body(local_authority=code))
    await ok(await command(http, declined["id"], "information-session"))
    closed = await ok(await command(http, declined["id"], "decline-mediation"))
    dr = await create(http, dr_body(local_authority=code))
    return {"code": code, "late": late, "declined": closed, "dr": dr}


async def test_list_shows_a_council_s_referrals_without_personal_data(
    stack: Stack, council_cases: dict[str, Any]
) -> None:
    response = await stack.http.get(
        "/v1/referrals", params={"local_authority": council_cases["code"]}
    )
    page = await ok(response)
    assert page["next_cursor"] is None
    by_id = {item["id"]: item for item in page["items"]}
    late, declined, dr = (council_cases[k] for k in ("late", "declined", "dr"))
    assert set(by_id) == {late["id"], declined["id"], dr["id"]}
    for text in PERSONAL:
        assert text not in response.text
    item = by_id[declined["id"]]
    assert set(item) == {
        "id",
        "route",
        "status",
        "local_authority",
        "external_reference",  # the council's own reference: not personal data
        "next_deadline",
        "breached",
        "certificate",
        "appeal_deadline",
        "outcome",
        "created_at",
        "updated_at",
    }
    # Read-your-writes: the command's answer and the list agree at once.
    assert item["status"] == "closed"
    assert item["outcome"] == "declined_mediation"
    assert item["certificate"] == {
        "kind": "declined_mediation",
        "issued_on": declined["certificate"]["issued_on"],
    }
    assert item["appeal_deadline"] == declined["appeal_deadline"]
    assert by_id[late["id"]]["breached"] is True
    assert by_id[late["id"]]["next_deadline"] == late["next_deadline"]
    assert by_id[dr["id"]]["route"] == "disagreement_resolution"


async def test_default_order_is_next_deadline_with_undated_last(
    stack: Stack, council_cases: dict[str, Any]
) -> None:
    page = await listed(stack.http, local_authority=council_cases["code"])
    dues = [i["next_deadline"]["due_on"] if i["next_deadline"] else None for i in page["items"]]
    dated = [d for d in dues if d is not None]
    assert dues == sorted(dated) + [None] * (len(dues) - len(dated))
    assert dues[-1] is None  # the closed referral has no open deadline


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "closed"}, ["declined"]),
        ({"status": ["closed", "awaiting_party_responses"]}, ["declined", "dr"]),
        ({"route": "disagreement_resolution"}, ["dr"]),
        ({"breached": "true"}, ["late"]),
        ({"breached": "false"}, ["declined", "dr"]),
        ({"created_from": "{today}", "created_to": "{today}"}, ["late", "declined", "dr"]),
        ({"created_to": "{yesterday}"}, []),
        ({"sort": "-created"}, ["dr", "declined", "late"]),
        ({"sort": "created"}, ["late", "declined", "dr"]),
    ],
    ids=[
        "status",
        "two-statuses",
        "route",
        "breached",
        "not-breached",
        "created-today",
        "created-before-today",
        "newest-first",
        "oldest-first",
    ],
)
async def test_filters_select_the_matching_referrals_when_combined_with_council(
    stack: Stack, council_cases: dict[str, Any], params: dict[str, Any], expected: list[str]
) -> None:
    days = {"{today}": today().isoformat(), "{yesterday}": (today() - timedelta(1)).isoformat()}
    query = {k: days.get(v, v) if isinstance(v, str) else v for k, v in params.items()}
    page = await listed(stack.http, local_authority=council_cases["code"], **query)
    found = ids(page)
    want = [council_cases[name]["id"] for name in expected]
    if "sort" in params:
        assert found == want
    else:
        assert sorted(found) == sorted(want)


async def test_due_filters_bound_the_next_deadline(
    stack: Stack, council_cases: dict[str, Any]
) -> None:
    late = council_cases["late"]
    due = late["next_deadline"]["due_on"]
    code = council_cases["code"]
    on_or_before = ids(await listed(stack.http, local_authority=code, due_before=due))
    on_or_after = ids(await listed(stack.http, local_authority=code, due_after=due))
    assert late["id"] in on_or_before
    assert late["id"] in on_or_after
    day_after = (today().fromisoformat(due) + timedelta(days=1)).isoformat()
    assert late["id"] not in ids(
        await listed(stack.http, local_authority=code, due_after=day_after)
    )
    # Referrals with no open deadline never match a due filter.
    assert council_cases["declined"]["id"] not in on_or_before + on_or_after


async def test_cursor_pages_walk_the_same_order_one_at_a_time(
    stack: Stack, council_cases: dict[str, Any]
) -> None:
    code = council_cases["code"]
    for sort in ("next_deadline", "created", "-created"):
        whole = ids(await listed(stack.http, local_authority=code, sort=sort))
        walked: list[str] = []
        cursor = None
        for _ in range(5):
            params: dict[str, Any] = {"local_authority": code, "sort": sort, "limit": 1}
            if cursor:
                params["cursor"] = cursor
            page = await listed(stack.http, **params)
            walked += ids(page)
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert walked == whole, sort
        assert len(walked) == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 201}, "query.limit"),
        ({"limit": 0}, "query.limit"),
        ({"status": "lost"}, "query.status.0"),
        ({"stauts": "closed"}, "query.stauts"),
        ({"sort": "name"}, "query.sort"),
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"due_before": "2026-13-01"}, "query.due_before"),
    ],
    ids=["limit-high", "limit-zero", "status", "typo", "sort", "cursor", "date"],
)
async def test_bad_query_is_422_naming_the_parameter(
    stack: Stack, params: dict[str, Any], field: str
) -> None:
    response = await stack.http.get("/v1/referrals", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_cursor_from_another_query_is_422(
    stack: Stack, council_cases: dict[str, Any]
) -> None:
    page = await listed(stack.http, local_authority=council_cases["code"], limit=1)
    response = await stack.http.get(
        "/v1/referrals",
        params={
            "local_authority": council_cases["code"],
            "limit": 1,
            "route": "mediation",
            "cursor": page["next_cursor"],
        },
    )
    assert response.status_code == 422
    assert "another query" in response.json()["errors"][0]["message"]


# --------------------------------------------------------------------------- timeline


async def test_timeline_lists_each_event_once_in_order_with_its_actor(
    stack: Stack, council_cases: dict[str, Any]
) -> None:
    declined = council_cases["declined"]
    response = await stack.http.get(f"/v1/referrals/{declined['id']}/events")
    timeline = await ok(response)
    events = timeline["items"]
    assert timeline["referral_id"] == declined["id"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    types = [e["type"] for e in events]
    assert types[0] == "referral.created"
    assert types.index("information_session.held") < types.index("mediation.declined")
    assert types.index("mediation.declined") < types.index("certificate.issued")
    assert types.index("certificate.issued") < types.index("referral.closed")
    by_type = {e["type"]: e for e in events}
    assert by_type["referral.created"]["actor"] == stack.key_id
    assert by_type["referral.created"]["actor_name"] == "api"
    assert by_type["referral.created"]["actor_type"] == "api_client"
    assert by_type["referral.created"]["data"]["local_authority"] == council_cases["code"]
    issued = by_type["certificate.issued"]
    assert (issued["actor"], issued["actor_type"]) == ("system", "system")
    assert issued["data"]["number"] == declined["certificate"]["number"]
    assert issued["data"]["kind"] == "declined_mediation"
    assert issued["occurred_on"] == declined["certificate"]["issued_on"]
    assert by_type["referral.closed"]["data"] == {"outcome": "declined_mediation"}
    for text in PERSONAL:
        assert text not in response.text


async def test_timeline_pages_with_after(stack: Stack, council_cases: dict[str, Any]) -> None:
    rid = council_cases["declined"]["id"]
    whole = (await ok(await stack.http.get(f"/v1/referrals/{rid}/events")))["items"]
    first = await ok(await stack.http.get(f"/v1/referrals/{rid}/events", params={"limit": 2}))
    assert [e["seq"] for e in first["items"]] == [1, 2]
    assert first["next_after"] == 2
    rest = await ok(
        await stack.http.get(f"/v1/referrals/{rid}/events", params={"after": first["next_after"]})
    )
    assert first["items"] + rest["items"] == whole
    assert rest["next_after"] is None


async def test_timeline_of_unknown_referral_is_404(stack: Stack) -> None:
    response = await stack.http.get("/v1/referrals/00000000-0000-4000-8000-000000000000/events")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


# --------------------------------------------------------------------------- council-limited keys


async def test_key_limited_to_a_council_lists_only_its_referrals(
    stack: Stack, council_cases: dict[str, Any]
) -> None:
    code = council_cases["code"]
    key = await create_key(
        stack.db.sessionmaker,
        name="council-crm",
        scopes=["referrals:read"],
        local_authorities=[code],
    )
    headers = {"Authorization": f"Bearer {key.token}"}
    async with httpx.AsyncClient(base_url=stack.base_url, headers=headers) as http:
        everything = await ok(await http.get("/v1/referrals", params={"limit": 200}))
        assert {i["local_authority"] for i in everything["items"]} == {code}
        assert len(everything["items"]) == 3
        other = await http.get("/v1/referrals", params={"local_authority": "E10000015"})
        assert other.status_code == 403
        assert other.headers["content-type"].startswith("application/problem+json")
        own = await ok(await http.get("/v1/referrals", params={"local_authority": code}))
        assert len(own["items"]) == 3
