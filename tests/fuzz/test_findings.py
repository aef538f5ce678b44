"""What fuzzing found, pinned as plain regression tests (the fuzzer's examples are bounded, so
it need not hit each of them again). Each was a 500 and is now a 422 problem+json; the NUL
and integer cases failed on PostgreSQL only, which CI runs."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Stack
from tests.e2e.helpers import create
from tests.factories import mediation_body


def assert_422(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    if "errors" in problem:
        assert [e["field"] for e in problem["errors"]] == [field]


@pytest.mark.parametrize("command", ["book-meeting", "party-response", "record-meeting"])
async def test_a_command_that_needs_a_body_sent_without_one_is_422(
    stack: Stack, command: str
) -> None:
    referral = await create(stack.http, mediation_body())
    response = await stack.http.post(f"/v1/referrals/{referral['id']}/{command}")
    assert_422(response, "body")


async def test_nul_characters_are_refused_in_query_path_and_body(stack: Stack) -> None:
    http = stack.http
    assert_422(await http.get("/v1/referrals", params={"local_authority": "E1\x00"}), "query")
    assert_422(await http.get("/v1/mediators/med%00x"), "path")
    body = {"name": "Nul\x00Mediator", "email": "nul@example.org", "send_trained": True}
    assert_422(await http.post("/v1/mediators", json=body), "body")
    # A backslash followed by "u0000" is ordinary text, not a NUL.
    body["name"] = "Back\\u0000slash"
    created = await http.post("/v1/mediators", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Back\\u0000slash"


async def test_an_event_cursor_past_any_sequence_number_is_422(stack: Stack) -> None:
    referral = await create(stack.http, mediation_body())
    response = await stack.http.get(
        f"/v1/referrals/{referral['id']}/events", params={"after": 2**40}
    )
    assert_422(response, "query.after")
