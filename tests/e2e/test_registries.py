"""Registries over real HTTP: mediators, venues, councils and providers, and booking with them."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.e2e.helpers import command, create, london_at, meeting_day, ok
from tests.factories import HERTS, council_bodies, dr_body, mediation_body

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")


def mediator_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Robin Mediator",
        "email": "robin@example.org",
        "send_trained": True,
        "accreditation": "CMC registered",
    }
    body.update(overrides)
    return body


async def register(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return await ok(await http.post(path, json=body), 201)


async def new_council(http: httpx.AsyncClient, **kwargs: Any) -> dict[str, Any]:
    provider, council = council_bodies(**kwargs)
    await register(http, "/v1/providers", provider)
    return await register(http, "/v1/local-authorities", council)


def problem_fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"].startswith("application/problem+json")
    return [e["field"] for e in response.json()["errors"]]


# --------------------------------------------------------------------------- mediators


async def test_mediator_is_created_read_updated_and_deactivated(stack: Stack) -> None:
    http = stack.http
    hours = [{"weekday": d, "start": "09:30:00", "end": "16:00:00"} for d in WEEKDAYS]
    created = await register(
        http,
        "/v1/mediators",
        mediator_body(
            conflict_local_authorities=["E10000016"],
            conflict_organisations=["Oakfield Primary School"],
            working_hours=hours,
            unavailable=[{"starts_on": "2027-01-04", "ends_on": "2027-01-08"}],
        ),
    )
    mid = created["id"]
    assert mid.startswith("med-")
    assert created["active"] is True
    assert created["working_hours"] == hours
    assert await ok(await http.get(f"/v1/mediators/{mid}")) == created

    patched = await ok(
        await http.patch(f"/v1/mediators/{mid}", json={"accreditation": None, "unavailable": []})
    )
    assert patched["accreditation"] is None
    assert patched["unavailable"] == []
    assert patched["name"] == created["name"]  # untouched
    assert (await ok(await http.get(f"/v1/mediators/{mid}"))) == patched

    gone = await ok(await http.delete(f"/v1/mediators/{mid}"))
    assert gone["active"] is False
    assert (await ok(await http.get(f"/v1/mediators/{mid}")))["active"] is False
    active_ids = await all_ids(http, "/v1/mediators", active="true")
    assert mid not in active_ids
    assert mid in await all_ids(http, "/v1/mediators", active="false")


async def all_ids(http: httpx.AsyncClient, path: str, **params: Any) -> list[str]:
    found: list[str] = []
    cursor = None
    while True:
        query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = await ok(await http.get(path, params=query))
        found += [item.get("id") or item.get("code") for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def test_mediator_list_pages_by_cursor_and_filters_conflicts(stack: Stack) -> None:
    http = stack.http
    tag = uuid.uuid4().hex[:6]
    council = await new_council(http)
    free = await register(http, "/v1/mediators", mediator_body(id=f"a-{tag}-free"))
    barred = await register(
        http,
        "/v1/mediators",
        mediator_body(id=f"a-{tag}-code", conflict_local_authorities=[council["code"]]),
    )
    by_name = await register(
        http,
        "/v1/mediators",
        mediator_body(id=f"a-{tag}-name", conflict_organisations=[council["name"].upper()]),
    )
    bookable = await all_ids(http, "/v1/mediators", bookable_for=council["code"])
    assert free["id"] in bookable
    assert barred["id"] not in bookable
    assert by_name["id"] not in bookable
    # Small pages walk the same rows as one big page, each once.
    walked: list[str] = []
    cursor = None
    for _ in range(1000):
        query: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await ok(await http.get("/v1/mediators", params=query))
        assert len(page["items"]) <= 2
        walked += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == await all_ids(http, "/v1/mediators")
    assert len(walked) == len(set(walked))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (mediator_body(send_trained=None), "body.send_trained"),
        (mediator_body(surprise=1), "body.surprise"),
        (mediator_body(email="not-an-email"), "body.email"),
        (
            mediator_body(working_hours=[{"weekday": "monday", "start": "17:00", "end": "09:00"}]),
            "body.working_hours.0",
        ),
        (
            mediator_body(working_hours=[{"weekday": "funday", "start": "09:00", "end": "17:00"}]),
            "body.working_hours.0.weekday",
        ),
        (
            mediator_body(unavailable=[{"starts_on": "2027-01-08", "ends_on": "2027-01-04"}]),
            "body.unavailable.0",
        ),
    ],
    ids=[
        "untrained-null",
        "unknown-field",
        "email",
        "hours-backwards",
        "weekday",
        "dates-backwards",
    ],
)
async def test_invalid_mediator_is_422_naming_the_field(
    stack: Stack, body: dict[str, Any], field: str
) -> None:
    response = await stack.http.post("/v1/mediators", json=body)
    assert response.status_code == 422, response.text
    assert problem_fields(response) == [field]


async def test_patch_refuses_null_for_a_required_field(stack: Stack) -> None:
    created = await register(stack.http, "/v1/mediators", mediator_body())
    response = await stack.http.patch(f"/v1/mediators/{created['id']}", json={"name": None})
    assert response.status_code == 422
    assert "name: cannot be null" in response.json()["detail"]
    assert (await ok(await stack.http.get(f"/v1/mediators/{created['id']}")))[
        "name"
    ] == "Robin Mediator"


async def test_unknown_registry_ids_are_404(stack: Stack) -> None:
    for path in (
        "/v1/mediators/nobody",
        "/v1/venues/nowhere",
        "/v1/providers/none",
        "/v1/local-authorities/E99",
    ):
        response = await stack.http.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
    patched = await stack.http.patch("/v1/mediators/nobody", json={"name": "X"})
    assert patched.status_code == 404
    assert (await stack.http.delete("/v1/venues/nowhere")).status_code == 404


async def test_create_with_idempotency_key_returns_the_first_response(stack: Stack) -> None:
    http = stack.http
    headers = {"Idempotency-Key": f"mediator-{uuid.uuid4()}"}
    body = mediator_body()
    first = await http.post("/v1/mediators", json=body, headers=headers)
    again = await http.post("/v1/mediators", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = await http.post("/v1/mediators", json=mediator_body(name="Other"), headers=headers)
    assert other.status_code == 422
    assert problem_fields(other) == ["header.Idempotency-Key"]


async def test_duplicate_id_is_409(stack: Stack) -> None:
    ident = f"med-dup-{uuid.uuid4().hex[:8]}"
    await register(stack.http, "/v1/mediators", mediator_body(id=ident))
    response = await stack.http.post("/v1/mediators", json=mediator_body(id=ident, name="Other"))
    assert response.status_code == 409
    assert (await ok(await stack.http.get(f"/v1/mediators/{ident}")))["name"] == "Robin Mediator"


# --------------------------------------------------------------------------- venues


async def test_venue_is_neutral_unless_a_party_s_premises(stack: Stack) -> None:
    http = stack.http
    hall = await register(
        http,
        "/v1/venues",
        {
            "name": "St Mary's Hall",
            "address": "2 Church Lane",
            "kind": "church_hall",
            "accessibility": "Step-free, hearing loop",
        },
    )
    assert hall["neutral"] is True
    assert hall["id"].startswith("venue-")
    school = await register(
        http, "/v1/venues", {"name": "Oakfield hall", "address": "Oakfield", "kind": "school"}
    )
    assert school["neutral"] is False
    refused = await http.post(
        "/v1/venues",
        json={"name": "Town Hall", "address": "High St", "kind": "council_office", "neutral": True},
    )
    assert refused.status_code == 422
    assert problem_fields(refused) == ["body"]
    assert "not neutral" in refused.json()["detail"]
    made_neutral = await http.patch(f"/v1/venues/{school['id']}", json={"neutral": True})
    assert made_neutral.status_code == 422
    assert problem_fields(made_neutral) == ["body.neutral"]
    moved = await ok(await http.patch(f"/v1/venues/{hall['id']}", json={"accessibility": None}))
    assert moved["accessibility"] is None
    closed = await ok(await http.delete(f"/v1/venues/{hall['id']}"))
    assert closed["active"] is False
    assert hall["id"] in await all_ids(http, "/v1/venues", active="false", neutral="true")
    assert hall["id"] not in await all_ids(http, "/v1/venues", active="true")


# --------------------------------------------------------------------------- booking


@pytest.fixture
async def arranging(stack: Stack) -> dict[str, Any]:
    """A referral in a council of its own, mediation requested: ready to book."""
    council = await new_council(stack.http)
    referral = await create(stack.http, mediation_body(local_authority=council["code"]))
    await ok(await command(stack.http, referral["id"], "request-mediation"))
    return {"council": council, "referral": referral}


async def book(
    stack: Stack, referral_id: str, mediator_id: str, day: date, hour: int = 10, **extra: Any
) -> httpx.Response:
    body = {"mediator_id": mediator_id, "starts_at": london_at(day, hour), **extra}
    return await command(stack.http, referral_id, "book-meeting", body)


async def test_booking_outside_availability_is_422_naming_the_field(
    stack: Stack, arranging: dict[str, Any]
) -> None:
    day = meeting_day(14)
    off = day + timedelta(days=1 if day.weekday() < 4 else 3)  # the next working day
    mediator = await register(
        stack.http,
        "/v1/mediators",
        mediator_body(
            working_hours=[{"weekday": d, "start": "09:00", "end": "17:00"} for d in WEEKDAYS],
            unavailable=[{"starts_on": off.isoformat(), "ends_on": off.isoformat()}],
        ),
    )
    rid = arranging["referral"]["id"]

    evening = await book(stack, rid, mediator["id"], day, hour=18)
    assert evening.status_code == 422, evening.text
    assert problem_fields(evening) == ["body.starts_at"]
    assert "working_hours" in evening.json()["detail"]
    assert "Monday 09:00–17:00" in evening.json()["detail"]

    # 15:00 + 150 minutes ends at 17:30: past the end of the day's hours.
    late_finish = await book(stack, rid, mediator["id"], day, hour=15)
    assert late_finish.status_code == 422
    assert "working_hours" in late_finish.json()["detail"]

    saturday = day + timedelta(days=(5 - day.weekday()) % 7)
    weekend = await book(stack, rid, mediator["id"], saturday)
    assert weekend.status_code == 422
    assert "working_hours" in weekend.json()["detail"]

    holiday = await book(stack, rid, mediator["id"], off)
    assert holiday.status_code == 422
    assert problem_fields(holiday) == ["body.starts_at"]
    assert f"unavailable from {off.isoformat()} to {off.isoformat()}" in holiday.json()["detail"]

    booked = await ok(await book(stack, rid, mediator["id"], day))
    assert booked["status"] == "meeting_booked"
    assert booked["meetings"][-1]["mediator"]["id"] == mediator["id"]


@pytest.mark.parametrize(
    ("conflict", "message"),
    [
        ("council-code", "conflict of interest with the local authority"),
        ("council-name", "conflict of interest with the local authority"),
        ("school", "conflict of interest with Oakfield Primary School"),
        ("untrained", "is not SEND-trained"),
        ("inactive", "no active mediator"),
    ],
)
async def test_mediator_is_never_booked_when_conflicted_untrained_or_inactive(
    stack: Stack, arranging: dict[str, Any], conflict: str, message: str
) -> None:
    council = arranging["council"]
    bodies = {
        "council-code": mediator_body(conflict_local_authorities=[council["code"].lower()]),
        "council-name": mediator_body(conflict_organisations=[f"  {council['name']} "]),
        "school": mediator_body(conflict_organisations=["oakfield primary school"]),
        "untrained": mediator_body(send_trained=False),
        "inactive": mediator_body(),
    }
    mediator = await register(stack.http, "/v1/mediators", bodies[conflict])
    if conflict == "inactive":
        await ok(await stack.http.delete(f"/v1/mediators/{mediator['id']}"))
    rid = arranging["referral"]["id"]
    response = await book(stack, rid, mediator["id"], meeting_day(14))
    assert response.status_code == 422, response.text
    assert problem_fields(response) == ["body.mediator_id"]
    assert message in response.json()["detail"]
    state = await ok(await stack.http.get(f"/v1/referrals/{rid}"))
    assert state["status"] == "arranging_meeting"
    assert state["meetings"] == []


async def test_booking_refuses_the_mediators_the_list_hides_when_a_council_code_is_an_organisation(
    stack: Stack, arranging: dict[str, Any]
) -> None:
    # The list hid such a mediator and booking took it; one rule now (models/domain/mediators).
    council = arranging["council"]
    body = mediator_body(conflict_organisations=[council["code"]])
    mediator = await register(stack.http, "/v1/mediators", body)
    bookable = await all_ids(stack.http, "/v1/mediators", bookable_for=council["code"])
    assert mediator["id"] not in bookable
    response = await book(stack, arranging["referral"]["id"], mediator["id"], meeting_day(14))
    assert response.status_code == 422, response.text
    assert problem_fields(response) == ["body.mediator_id"]
    assert "conflict of interest with the local authority" in response.json()["detail"]


async def test_bookable_mediator_pages_are_full_when_conflicted_mediators_come_first(
    stack: Stack,
) -> None:
    http = stack.http
    council = await new_council(http)
    tag = uuid.uuid4().hex[:6]
    for n in range(3):  # ids that sort before every other mediator's
        conflicted = mediator_body(id=f"0-{tag}-c{n}", conflict_local_authorities=[council["code"]])
        await register(http, "/v1/mediators", conflicted)
    free = [
        await register(http, "/v1/mediators", mediator_body(id=f"0-{tag}-f{n}")) for n in (1, 2)
    ]
    query = {"bookable_for": council["code"], "limit": 2}
    first = await ok(await http.get("/v1/mediators", params=query))
    assert [m["id"] for m in first["items"]][:2] == [m["id"] for m in free]
    assert first["next_cursor"] is not None
    walked: list[str] = []
    cursor = None
    while True:
        page = await ok(
            await http.get("/v1/mediators", params={**query, "cursor": cursor} if cursor else query)
        )
        walked += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 2  # only the last page may be short
    assert walked == await all_ids(http, "/v1/mediators", bookable_for=council["code"])
    assert not any(i.startswith(f"0-{tag}-c") for i in walked)


async def test_in_person_booking_needs_an_active_neutral_venue(
    stack: Stack, arranging: dict[str, Any]
) -> None:
    mediator = await register(stack.http, "/v1/mediators", mediator_body())
    school = await register(
        stack.http, "/v1/venues", {"name": "School hall", "address": "Oakfield", "kind": "school"}
    )
    hall = await register(
        stack.http, "/v1/venues", {"name": "Hall", "address": "1 Road", "kind": "community_centre"}
    )
    rid, day = arranging["referral"]["id"], meeting_day(14)
    refused = await book(
        stack, rid, mediator["id"], day, venue={"kind": "in_person", "venue_id": school["id"]}
    )
    assert refused.status_code == 422
    assert "not a neutral venue" in refused.json()["detail"]
    booked = await ok(
        await book(
            stack, rid, mediator["id"], day, venue={"kind": "in_person", "venue_id": hall["id"]}
        )
    )
    assert booked["meetings"][-1]["venue"]["venue_id"] == hall["id"]


# --------------------------------------------------------------------------- councils, providers


async def test_seeded_council_is_served_by_kids(stack: Stack) -> None:
    herts = await ok(await stack.http.get(f"/v1/local-authorities/{HERTS}"))
    assert herts["name"] == "Hertfordshire County Council"
    assert herts["provider_id"] == "kids"
    kids = await ok(await stack.http.get("/v1/providers/kids"))
    assert kids["referral_action_working_days"] == 5
    assert HERTS in await all_ids(stack.http, "/v1/local-authorities", provider_id="kids")


async def test_two_councils_run_side_by_side_with_their_providers_service_levels(
    stack: Stack,
) -> None:
    http = stack.http
    five = await new_council(http, action_working_days=5)
    ten = await new_council(http, action_working_days=10)
    received = "2026-05-22"  # Friday before the spring bank holiday (RULES.md W12)
    a = await create(http, dr_body(local_authority=five["code"], received_on=received))
    b = await create(http, dr_body(local_authority=ten["code"], received_on=received))
    assert a["deadlines"]["referral_actioned_by"]["due_on"] == "2026-06-01"
    assert b["deadlines"]["referral_actioned_by"]["due_on"] == "2026-06-08"

    # A new service level applies to referrals received after the change.
    changed = await ok(
        await http.patch(
            f"/v1/providers/{ten['provider_id']}", json={"referral_action_working_days": 7}
        )
    )
    assert changed["referral_action_working_days"] == 7
    c = await create(http, dr_body(local_authority=ten["code"], received_on=received))
    assert c["deadlines"]["referral_actioned_by"]["due_on"] == "2026-06-03"
    again = await ok(await http.get(f"/v1/referrals/{b['id']}"))
    assert again["deadlines"]["referral_actioned_by"]["due_on"] == "2026-06-08"

    # Moving a council to another provider changes whose levels new referrals get.
    moved = await ok(
        await http.patch(
            f"/v1/local-authorities/{ten['code']}", json={"provider_id": five["provider_id"]}
        )
    )
    assert moved["provider_id"] == five["provider_id"]
    d = await create(http, dr_body(local_authority=ten["code"], received_on=received))
    assert d["deadlines"]["referral_actioned_by"]["due_on"] == "2026-06-01"


async def test_deactivated_council_takes_no_new_referrals(stack: Stack) -> None:
    council = await new_council(stack.http)
    off = await ok(
        await stack.http.patch(f"/v1/local-authorities/{council['code']}", json={"active": False})
    )
    assert off["active"] is False
    response = await stack.http.post("/v1/referrals", json=dr_body(local_authority=council["code"]))
    assert response.status_code == 422
    assert problem_fields(response) == ["body.local_authority"]


async def test_council_with_unknown_provider_is_422(stack: Stack) -> None:
    _, council = council_bodies()
    response = await stack.http.post("/v1/local-authorities", json=council)
    assert response.status_code == 422
    assert problem_fields(response) == ["body.provider_id"]
    assert (await stack.http.get(f"/v1/local-authorities/{council['code']}")).status_code == 404
    patched = await stack.http.patch(
        f"/v1/local-authorities/{HERTS}", json={"provider_id": "nobody"}
    )
    assert patched.status_code == 422
    assert (await ok(await stack.http.get(f"/v1/local-authorities/{HERTS}")))[
        "provider_id"
    ] == "kids"


async def test_invalid_provider_is_422_naming_the_field(stack: Stack) -> None:
    provider, _ = council_bodies()
    response = await stack.http.post(
        "/v1/providers", json={**provider, "referral_action_working_days": 0}
    )
    assert response.status_code == 422
    assert problem_fields(response) == ["body.referral_action_working_days"]
    duplicate = await stack.http.post("/v1/providers", json={**provider, "id": "kids"})
    assert duplicate.status_code == 409


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/mediators", {"actve": "true"}, "query.actve"),
        ("/v1/venues", {"limit": 500}, "query.limit"),
        ("/v1/local-authorities", {"cursor": "%%%"}, "query.cursor"),
        ("/v1/providers", {"page": 2}, "query.page"),
    ],
    ids=["typo", "limit", "cursor", "unknown"],
)
async def test_bad_registry_list_query_is_422_naming_the_parameter(
    stack: Stack, path: str, params: dict[str, Any], field: str
) -> None:
    response = await stack.http.get(path, params=params)
    assert response.status_code == 422, response.text
    assert problem_fields(response) == [field]
