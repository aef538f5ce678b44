"""Parties answer for themselves: the link in the email, a real browser, the workflow.

One module, one stack (the session's e2e stack: dev server, worker, API over HTTP, the test
SMTP server) and one headless Debian Chromium driven by Playwright. Every link is read from
an email the SMTP server received; every page state is checked with axe-core (WCAG 2.2 AA).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy import update

from api.main import create_app
from models.store.party_links import PartyLinkRow, ensure_link
from models.store.tables import table_of
from tests.conftest import Stack, free_port, make_settings, serve_api
from tests.e2e.helpers import command, create, eventually, london_at, meeting_day, ok, today
from tests.factories import dr_body, mediation_body
from tests.servers import plain_text

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LINK = re.compile(r"(http://[^\s]+/respond/[A-Za-z0-9_-]{43})")
PROVIDER = "senmediation@kids.org.uk"
WCAG = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}
}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert shutil.which(CHROMIUM) or shutil.which("chromium"), "chromium is not installed"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    opened = await context.new_page()
    yield opened
    await context.close()


async def accessible(page: Page) -> None:
    """axe-core finds no WCAG 2.2 A/AA violation on the page as it stands."""
    results = await Axe().run(page, options=WCAG)
    assert results.violations_count == 0, results.generate_report()


async def link_in_mail(stack: Stack, referral_id: str, to: str, subject: str) -> str:
    """The personal link in the email to ``to`` about ``referral_id`` with ``subject``."""

    async def found() -> str | None:
        for received in stack.smtp.sink.to(to):
            message = received.message
            text = plain_text(message)
            if referral_id in text and subject in str(message["Subject"]):
                match = LINK.search(text)
                if match:
                    return match.group(1)
        return None

    return await eventually(found, 30)


async def mail_to(stack: Stack, referral_id: str, to: str, subject: str) -> str:
    async def found() -> str | None:
        for received in stack.smtp.sink.to(to):
            text = plain_text(received.message)
            if referral_id in text and subject in str(received.message["Subject"]):
                return text
        return None

    return await eventually(found, 30)


async def events(stack: Stack, referral_id: str, kind: str) -> list[dict[str, Any]]:
    timeline = await ok(await stack.http.get(f"/v1/referrals/{referral_id}/events"))
    return [e for e in timeline["items"] if e["type"] == kind]


async def referral(stack: Stack, referral_id: str) -> dict[str, Any]:
    return await ok(await stack.http.get(f"/v1/referrals/{referral_id}"))


async def test_school_declines_and_council_accepts_when_asked_by_email(
    stack: Stack, page: Page
) -> None:
    rid = (await create(stack.http, dr_body()))["id"]
    school = await link_in_mail(stack, rid, "head@oakfield.example.sch.uk", "take part")

    await page.goto(school)
    await accessible(page)
    assert "Oakfield Primary School" in await page.locator("h1").inner_text()
    assert "Kids SEND Mediation" in await page.locator("header").inner_text()
    await page.get_by_role("button", name="Continue").click()  # no choice: an error
    assert (
        "Select yes if you will take part"
        in await page.locator(".govuk-error-summary").inner_text()
    )
    await accessible(page)
    await page.get_by_label("No").check()
    await page.get_by_role("button", name="Continue").click()
    await accessible(page)
    await page.get_by_role("button", name="Send your answer").click()  # no reason: an error
    summary = page.locator(".govuk-error-summary a")
    assert await summary.get_attribute("href") == "#reason"
    await accessible(page)
    await page.get_by_label("Your reason").fill("We cannot release staff this term")
    await page.get_by_role("button", name="Send your answer").click()
    assert "will not take part" in await page.locator("main").inner_text()
    await accessible(page)

    state = await referral(stack, rid)
    answer = next(p for p in state["parties"] if p["id"] == "school")
    assert (answer["answer"], answer["reason"]) == ("declined", "We cannot release staff this term")
    responded = await events(stack, rid, "party.responded")
    assert [(e["actor"], e["actor_type"]) for e in responded] == [("party:school", "party")]

    council = await link_in_mail(stack, rid, "sam.officer@example.gov.uk", "take part")
    await page.goto(council)
    await page.get_by_label("Yes").check()
    await page.get_by_role("button", name="Continue").click()
    await accessible(page)
    await page.get_by_label("When can you meet? (optional)").fill("Tuesday mornings")
    await page.get_by_label("Do you need any adjustments").fill("A room on the ground floor")
    await page.get_by_role("button", name="Send your answer").click()
    assert "will take part" in await page.locator("main").inner_text()

    state = await referral(stack, rid)
    assert state["status"] == "arranging_meeting"
    assert "agreed to take part" in await mail_to(
        stack, rid, "grace.parent@example.org", "going ahead"
    )

    # Replayed: the used link shows what was decided, and records nothing more.
    await page.goto(school)
    assert "already answered" in await page.locator("h1").inner_text()
    await accessible(page)
    assert len(await events(stack, rid, "party.responded")) == 2


async def test_family_declines_mediation_after_being_told_what_follows(
    stack: Stack, page: Page
) -> None:
    body = mediation_body(
        decision={"type": "refusal_to_assess", "letter_date": today().isoformat()}
    )
    rid = (await create(stack.http, body))["id"]
    await ok(await command(stack.http, rid, "information-session"))
    link = await link_in_mail(stack, rid, "grace.parent@example.org", "go to mediation")

    await page.goto(link)
    await accessible(page)
    await page.get_by_label("No").check()
    await page.get_by_role("button", name="Continue").click()
    await accessible(page)
    expected = await ok(
        await stack.http.post(
            "/v1/timescales",
            json={
                "decision_letter_date": body["decision"]["letter_date"],
                "parent_informed_adviser_no_mediation_date": today().isoformat(),
                "certificate_issue_date": today().isoformat(),
            },
        )
    )
    text = await page.locator("main").inner_text()
    due = datetime.fromisoformat(expected["certificate_due_by"]).date()
    appeal = datetime.fromisoformat(expected["appeal_deadline"]).date()
    assert f"{due.day} {due:%B %Y}" in text
    assert f"5pm on {appeal.day} {appeal:%B %Y}" in text
    await page.get_by_role("button", name="Confirm: I do not want mediation").click()
    await accessible(page)
    assert "do not want to go to mediation" in await page.locator("main").inner_text()

    state = await referral(stack, rid)
    assert (state["status"], state["outcome"]) == ("closed", "declined_mediation")
    declined = await events(stack, rid, "mediation.declined")
    assert [e["actor"] for e in declined] == ["family"]

    # The next email: the certificate, with a personal link to read it as a web page.
    number = state["certificate"]["number"]
    view = await link_in_mail(stack, rid, "grace.parent@example.org", f"certificate {number}")
    await page.goto(view)
    await accessible(page)
    assert number in await page.locator("h1").inner_text()
    assert f"{appeal.day} {appeal:%B %Y}" in await page.locator("main").inner_text()
    pdf = await page.request.get(view + "/pdf")
    assert pdf.ok
    assert (await pdf.body()).startswith(b"%PDF")


async def test_invitees_reply_to_the_meeting_and_the_provider_is_told(
    stack: Stack, page: Page
) -> None:
    rid = (await create(stack.http, mediation_body()))["id"]
    await ok(await command(stack.http, rid, "request-mediation"))
    starts = london_at(meeting_day(23), 15)  # a slot no other test of the session books
    await ok(
        await command(
            stack.http,
            rid,
            "book-meeting",
            {"mediator_id": stack.registry["mediator"], "starts_at": starts},
        )
    )
    council = await link_in_mail(stack, rid, "sam.officer@example.gov.uk", "Invitation")
    await page.goto(council)
    await accessible(page)
    await page.get_by_label("No").check()
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Your reason").fill("Our decision maker is away that week")
    await page.get_by_role("button", name="Ask to rearrange").click()
    await accessible(page)
    told = await mail_to(stack, rid, PROVIDER, "rearrangement")
    assert "Our decision maker is away that week" in told

    family = await link_in_mail(stack, rid, "grace.parent@example.org", "Invitation")
    await page.goto(family)
    await page.get_by_label("Yes").check()
    await page.get_by_role("button", name="Continue").click()
    await accessible(page)
    await page.get_by_role("button", name="Confirm attendance").click()
    assert "will attend" in await page.locator("main").inner_text()
    await mail_to(stack, rid, PROVIDER, "attendance confirmed")

    replies = (await referral(stack, rid))["meetings"][0]["replies"]
    assert {(r["invitee"], r["answer"]) for r in replies} == {
        ("la", "rearrange"),
        ("family", "attending"),
    }
    actors = [e["actor"] for e in await events(stack, rid, "meeting.reply")]
    assert actors == ["party:la", "family"]


async def _dr_link(stack: Stack, to: str = "head@oakfield.example.sch.uk") -> tuple[str, str]:
    rid = (await create(stack.http, dr_body()))["id"]
    return rid, await link_in_mail(stack, rid, to, "take part")


async def _form_token(client: httpx.AsyncClient, url: str) -> str:
    answer = await client.get(url)
    found = re.search(r'name="form_token" value="([0-9a-f]+)"', answer.text)
    assert found, answer.text
    return found.group(1)


async def test_link_records_nothing_when_tampered_expired_or_superseded(
    stack: Stack, page: Page
) -> None:
    rid, link = await _dr_link(stack)
    token = link.rsplit("/", 1)[1]
    tampered = link[: -len(token)] + ("A" if token[0] != "A" else "B") + token[1:]
    await page.goto(tampered)
    assert "not recognised" in await page.locator("h1").inner_text()
    await accessible(page)

    table = table_of(PartyLinkRow)
    async with stack.db.sessionmaker() as session:
        await session.exec(
            update(table)
            .where(table.c.referral_id == rid, table.c.party == "school")
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        await session.commit()
    await page.goto(link)
    assert "expired" in await page.locator("h1").inner_text()
    await accessible(page)

    rid2, first = await _dr_link(stack, "sam.officer@example.gov.uk")
    now = datetime.now(UTC)
    await ensure_link(  # a later email for the same decision (say, a reminder)
        stack.db.sessionmaker,
        {
            "id": "f" * 32,
            "token_sha256": "0" * 64,
            "send_key": f"{rid2}:later:la",
            "referral_id": rid2,
            "party": "la",
            "purpose": "dr_consent",
            "slot": "dr_consent:la:",
            "created_at": now,
            "expires_at": now + timedelta(days=1),
        },
    )
    await page.goto(first)
    assert "replaced" in await page.locator("h1").inner_text()
    await accessible(page)
    for case in (rid, rid2):
        assert await events(stack, case, "party.responded") == []


async def test_forms_refuse_cross_site_posts_and_answer_only_for_their_party(
    stack: Stack,
) -> None:
    rid, link = await _dr_link(stack)
    async with httpx.AsyncClient(timeout=30) as client:
        token = await _form_token(client, link)
        async with httpx.AsyncClient(timeout=30) as stranger:  # no form cookie
            without_cookie = await stranger.post(link, data={"form_token": token, "choice": "no"})
        assert without_cookie.status_code == 403
        cross_site = await client.post(
            link,
            data={"form_token": token, "choice": "no"},
            headers={"sec-fetch-site": "cross-site"},
        )
        assert cross_site.status_code == 403
        decline = f"{link}/decline"
        token = await _form_token(client, decline)
        # The form names another party: the link answers for its own party only.
        sent = await client.post(
            decline, data={"form_token": token, "reason": "No staff", "party_id": "la"}
        )
        assert sent.status_code == 303
        again = await client.post(decline, data={"form_token": token, "reason": "No staff"})
        assert "already answered" in again.text
    parties = {p["id"]: p["answer"] for p in (await referral(stack, rid))["parties"]}
    assert parties == {"school": "declined", "la": "pending"}
    assert [e["actor"] for e in await events(stack, rid, "party.responded")] == ["party:school"]


async def test_decision_the_referral_moved_past_shows_where_it_stands(
    stack: Stack, page: Page
) -> None:
    rid, link = await _dr_link(stack)
    await ok(await command(stack.http, rid, "withdraw"))
    await page.goto(link)
    text = await page.locator("main").inner_text()
    assert "no longer applies" in text
    assert "closed" in text
    await accessible(page)


async def test_link_pages_limit_requests_per_client_across_processes(stack: Stack) -> None:
    """Two API processes over one database share one count: the limit is not per process."""
    settings = make_settings(
        database_url=stack.db.url,
        task_queue=stack.settings.task_queue,
        page_requests_per_minute=3,
    )
    async with (
        serve_api(create_app(settings, temporal=stack.temporal), free_port()) as one,
        serve_api(create_app(settings, temporal=stack.temporal), free_port()) as two,
        # From an address of its own: the other tests' requests count for 127.0.0.1.
        httpx.AsyncClient(
            timeout=30, transport=httpx.AsyncHTTPTransport(local_address="127.0.0.7")
        ) as client,
    ):
        statuses = [
            (await client.get(f"{base}/respond/{'x' * 43}")).status_code
            for base in (one, two, one, two, one)
        ]
    assert 429 in statuses
    assert statuses[:2] == [404, 404]
