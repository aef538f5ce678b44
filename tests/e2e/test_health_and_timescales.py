"""Operations endpoints and the deadline calculator over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.main import create_app
from tests.conftest import Stack, free_port, make_settings, serve_api
from workflows.client import connect


async def test_healthz_and_readyz_when_everything_is_up(stack: Stack) -> None:
    assert (await stack.http.get("/healthz")).json() == {"status": "ok"}
    ready = await stack.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"temporal": "ok", "database": "ok"}


async def test_readyz_names_each_unreachable_dependency(tmp_path: Any) -> None:
    dead_temporal = await connect(f"127.0.0.1:{free_port()}", lazy=True)
    settings = make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    app = create_app(settings, temporal=dead_temporal)
    # A database whose directory vanished after start-up cannot answer.
    port = free_port()
    async with serve_api(app, port) as base, httpx.AsyncClient(base_url=base) as http:
        (tmp_path / "missing" / "dir").rmdir()
        (tmp_path / "missing").rmdir()
        response = await http.get("/readyz")
        assert (await http.get("/healthz")).status_code == 200
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["checks"]["temporal"].startswith("unreachable")
    assert body["checks"]["database"].startswith("unreachable")
    assert body["detail"] == "Unreachable: temporal, database"


# RULES.md §5 worked examples through the HTTP calculator (the unit tier covers every one).
@pytest.mark.parametrize(
    ("request_body", "expected"),
    [
        (  # W1: Easter Sunday then Easter Monday roll to Tue 7 Apr 2026
            {
                "decision_letter_date": "2026-01-14",
                "certificate_issue_date": "2026-03-05",
                "parent_informed_adviser_no_mediation_date": "2026-03-02",
            },
            {
                "contact_mediation_adviser_by": "2026-03-14",
                "certificate_due_by": "2026-03-05",
                "appeal_deadline": "2026-04-07",
            },
        ),
        (  # W5: 30 days, fallback deemed certificate over the Boxing Day substitute
            {"la_informed_wants_mediation_date": "2026-11-27"},
            {
                "mediation_must_be_arranged_by": "2026-12-27",
                "deemed_certificate_due_by": "2026-12-31",
            },
        ),
        (  # W8: Section I only, August rule
            {"decision_letter_date": "2026-06-30", "section_i_only": True},
            {"appeal_deadline": "2026-09-01"},
        ),
        (  # W9: Christmas window, 3 Jan 2028 substitute
            {"decision_letter_date": "2027-10-01", "certificate_issue_date": "2027-11-29"},
            {"appeal_deadline": "2028-01-04"},
        ),
        (  # W15 + W12
            {
                "date_of_birth": "2010-07-15",
                "referral_received_date": "2026-05-22",
                "mediation_date": "2026-01-12",
            },
            {
                "compulsory_school_age_ends": "2026-06-26",
                "young_person_from": "2026-06-27",
                "young_person_until_inclusive": "2035-07-14",
                "referral_actioned_by": "2026-06-01",
                "latest_notice_date_safest": "2026-01-02",
                "latest_notice_date_literal": "2026-01-05",
            },
        ),
    ],
    ids=["W1", "W5", "W8", "W9", "W15-W12"],
)
async def test_timescales_match_worked_examples(
    stack: Stack, request_body: dict[str, Any], expected: dict[str, str]
) -> None:
    response = await stack.http.post("/v1/timescales", json=request_body)
    assert response.status_code == 200, response.text
    body = response.json()
    for name, value in expected.items():
        assert body[name] == value, name
    assert None not in body.values()


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"decision_letter_date": "2026-02-30"}, "body.decision_letter_date"),
        (
            {"decision_letter_date": "2026-01-14", "certificate_issue_date": "2026-01-01"},
            "body.certificate_issue_date",
        ),
        ({"decision_letter_date": "2026-01-14", "surprise": "x"}, "body.surprise"),
    ],
    ids=["unparseable", "certificate-before-decision", "unknown-field"],
)
async def test_timescales_bad_input_is_422_naming_the_field(
    stack: Stack, request_body: dict[str, Any], field: str
) -> None:
    response = await stack.http.post("/v1/timescales", json=request_body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == [field]
