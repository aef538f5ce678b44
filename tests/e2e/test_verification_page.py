"""Verification for people: ``GET /v1/documents/{number}/verify`` opened in a browser is a
plain accessible page (genuine or not, kind, issue date, issuer, the appeal deadline of a
certificate), whatever the case of the number and with or without dashes or spaces."""

from __future__ import annotations

from datetime import date
from html.parser import HTMLParser

from models.domain.documents import long_date
from tests.conftest import Stack
from tests.e2e.helpers import command, create, eventually, ok
from tests.factories import CHILD_NAME, mediation_body

BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Authorization": "",  # public: no key
}


class Page(HTMLParser):
    """The page's language, headings, text, and anything a plain page should not have."""

    def __init__(self) -> None:
        super().__init__()
        self.lang = ""
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "html":
            self.lang = dict(attrs).get("lang") or ""

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(" ".join(data.split()))


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


async def test_verification_page_shows_a_genuine_certificate_when_opened_in_a_browser(
    stack: Stack,
) -> None:
    referral = await create(stack.http, mediation_body())
    await ok(await command(stack.http, referral["id"], "information-session"))
    certificate = (await ok(await command(stack.http, referral["id"], "decline-mediation")))[
        "certificate"
    ]
    number: str = certificate["number"]

    async def stored() -> bool:
        answer = await stack.http.get(f"/v1/documents/{number}/verify")
        return bool(answer.json()["genuine"])

    await eventually(stored)
    typed = number.lower().replace("-", " ")  # as someone might type it from the paper
    response = await stack.http.get(f"/v1/documents/{typed}/verify", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Accept" in response.headers["vary"]
    page = parse(response.text)
    text = " ".join(page.text)
    assert page.lang == "en-GB"
    assert page.tags.count("h1") == 1
    assert "script" not in page.tags
    assert "style" not in page.tags
    assert "Genuine document" in text
    assert number in text
    assert "Mediation certificate" in text
    assert long_date(date.fromisoformat(certificate["issued_on"])) in text
    assert "Kids" in text  # the issuer
    appeal = long_date(date.fromisoformat(certificate["appeal_deadline"]))
    assert f"5pm on {appeal}" in text
    assert CHILD_NAME not in response.text
    assert "Grace" not in response.text

    # Machines still get JSON, and the number in any form finds the same document.
    for form in (number.lower(), number.replace("-", ""), f" {number} "):
        machine = await ok(await stack.http.get(f"/v1/documents/{form}/verify"))
        assert (machine["number"], machine["genuine"]) == (number, True)
        assert machine["appeal_deadline"] == certificate["appeal_deadline"]


async def test_verification_page_says_not_genuine_when_the_number_is_unknown(
    stack: Stack,
) -> None:
    response = await stack.http.get(
        "/v1/documents/MC-0000-0000-0000-0000/verify",
        params={"sha256": "0" * 64},
        headers=BROWSER,
    )
    assert response.status_code == 200
    page = parse(response.text)
    text = " ".join(page.text)
    assert "Not a genuine document" in text
    assert "MC-0000-0000-0000-0000" in text
    assert "does not match any document" in text
