"""The document check for people: ``GET /v1/documents/{number}/verify`` opened in a browser
(``Accept: text/html``) answers with a plain page instead of JSON. One column, headings,
a description list, no script, no style sheet, no images (the API's Content-Security-Policy
allows none anyway): it reads the same in any browser, screen reader or text browser."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import Request

from models.domain.documents import long_date

PAGE = """<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
</head>
<body>
<main>
<h1>{title}</h1>
{content}
</main>
</body>
</html>
"""


def wants_html(request: Request) -> bool:
    """A browser asking for a page (``text/html`` before any JSON in ``Accept``)."""
    accept = request.headers.get("accept", "").lower()
    html = accept.find("text/html")
    json_at = accept.find("json")
    return html >= 0 and (json_at < 0 or html < json_at)


def _row(label: str, value: str) -> str:
    return f"<dt>{escape(label)}</dt>\n<dd>{escape(value)}</dd>"


def verification_page(verification: Any) -> str:
    """The page for a ``Verification`` (api/routes/documents.py)."""
    number = verification.number
    if not verification.genuine:
        title = "Not a genuine document"
        content = (
            f"<p>This service has not issued a document with the number "
            f"<strong>{escape(number)}</strong>.</p>\n"
            "<p>Check the number on the document: it starts with MC (certificate), AG "
            "(agreement) or MI (invitation), followed by 16 letters and digits. Upper or lower "
            "case, dashes and spaces do not matter. If it still does not match, the document "
            "did not come from this service: contact the mediation service that sent it.</p>"
        )
        if verification.sha256_matches is False:
            content += "\n<p>The file you checked does not match any document.</p>"
        return PAGE.format(title=title, content=content)
    rows = [
        _row("Document number", number),
        _row("Type of document", verification.title or verification.type or "Document"),
        _row("Date of issue", long_date(verification.issued_on)),
        _row("Issued by", verification.issuer or "the mediation service"),
    ]
    if verification.appeal_deadline is not None:
        rows.append(
            _row(
                "Appeal deadline",
                f"5pm on {long_date(verification.appeal_deadline)} (the Tribunal must receive "
                "the appeal by then)",
            )
        )
    if verification.sha256_matches is not None:
        rows.append(
            _row(
                "The file you checked",
                "matches the document as issued: it has not been changed"
                if verification.sha256_matches
                else "does NOT match the document as issued: it may have been changed",
            )
        )
    content = (
        "<p>This is a genuine document issued by this service.</p>\n"
        "<dl>\n" + "\n".join(rows) + "\n</dl>\n"
        "<p>This page never shows who a document is about. To check a copy is unaltered, "
        "compare it with the copy you were sent, or ask the service that issued it.</p>"
    )
    return PAGE.format(title="Genuine document", content=content)
