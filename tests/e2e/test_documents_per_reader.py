"""Documents per reader, end to end over real SMTP: each recipient's PDFs are read back and
hold what that reader needs and nothing meant for another — the family's reasonable
adjustments and supporter only in the family's and the mediator's invitations, each copy
addressed to its reader — with page numbers, no nearly empty last page, the booking's real
length, and no internal references."""

from __future__ import annotations

import io
import re
import uuid
from collections import defaultdict

from pypdf import PdfReader

from tests.conftest import Stack
from tests.e2e.helpers import command, create, eventually, london_at, ok, today
from tests.e2e.test_documents import LA, PARENT
from tests.factories import CHILD_NAME, contact, mediation_body

ADJUSTMENT = "A quiet room and short breaks, because of an anxiety condition"
SUPPORTER = "Lin Friend"
SUPPORTER_EMAIL = "lin.friend@example.org"
SENCO = "senco@oakfield.example.sch.uk"
NUMBER = re.compile(r"\b(MC|AG|MI)(-[0-9A-F]{4}){4}\b")
INTERNAL = re.compile(r"RULES\.md|\bDL-\d|\bA\d{1,2}\b|\bM\d{1,2}\b|\bW\d{1,2}\b")


def pages(content: bytes) -> list[str]:
    return [" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(content)).pages]


async def test_each_recipient_gets_only_its_own_copy_when_documents_are_sent(stack: Stack) -> None:
    mediator_email = f"mediator-{uuid.uuid4().hex[:6]}@example.org"
    mediator = await ok(
        await stack.http.post(
            "/v1/mediators",
            json={"name": "Morgan Mediator", "send_trained": True, "email": mediator_email},
        ),
        201,
    )
    body = mediation_body(
        supporter={
            "name": SUPPORTER,
            "relationship": "friend",
            "contact": contact(SUPPORTER, SUPPORTER_EMAIL),
        },
        preferences={"venue": "remote", "reasonable_adjustments": ADJUSTMENT},
    )
    referral = await create(stack.http, body)
    rid = referral["id"]
    await ok(await command(stack.http, rid, "request-mediation"))
    await ok(
        await command(
            stack.http,
            rid,
            "book-meeting",
            {
                "mediator_id": mediator["id"],
                "starts_at": london_at(today(), 0),
                "duration_minutes": 60,
                "short_notice_consented": True,
            },
        )
    )
    await ok(
        await command(
            stack.http,
            rid,
            "record-meeting",
            {
                "outcome": "partial_agreement",
                "settled_issues": ["The council will carry out an EHC needs assessment"],
                "open_issues": ["Which school is named"],
                "agreed_actions": [
                    {
                        "description": "Tell the family the assessment will go ahead",
                        "owner": "la",
                        "kind": "assess_notify",
                    }
                ],
            },
        )
    )
    signed = await ok(
        await command(stack.http, rid, "sign-agreement", {"signatories": ["family", "la"]})
    )
    assert signed["certificate"] is not None
    recipients = {
        "family": PARENT,
        "la": LA,
        "senco": SENCO,
        "mediator": mediator_email,
        "supporter": SUPPORTER_EMAIL,
    }

    async def received() -> dict[str, dict[str, list[str]]] | None:
        """recipient -> document number -> the text of each page of the PDF they got, once
        every delivery of the referral's three documents is sent."""
        listing = await ok(await stack.http.get(f"/v1/referrals/{rid}/documents"))
        documents = listing["documents"]
        emails = [d for doc in documents for d in doc["deliveries"] if d["channel"] == "email"]
        # invitation: 5 readers; certificate and agreement: the family and the council
        if len(emails) < 9 or any(d["status"] != "sent" for d in emails):
            return None
        numbers = {doc["number"] for doc in documents}
        got: dict[str, dict[str, list[str]]] = defaultdict(dict)
        for who, address in recipients.items():
            for mail in stack.smtp.sink.to(address):
                for part in mail.message.iter_attachments():
                    if part.get_content_type() != "application/pdf":
                        continue
                    text = pages(part.get_content())
                    found = NUMBER.search(" ".join(text))
                    if found is not None and found.group() in numbers:
                        got[who][found.group()] = text
        return got

    got = await eventually(received, seconds=40)
    kinds = {who: sorted(n[:2] for n in documents) for who, documents in got.items()}
    assert kinds == {
        "family": ["AG", "MC", "MI"],
        "la": ["AG", "MC", "MI"],
        "senco": ["MI"],
        "mediator": ["MI"],
        "supporter": ["MI"],
    }
    labels = {
        "la": "Copy for: Hertfordshire County Council (Sam Officer, SEN officer)",
        "senco": "Copy for: Oakfield Primary School (Pat Senco, SENCO)",
        "mediator": "Copy for: Morgan Mediator, the mediator",
        "supporter": f"Copy for: {SUPPORTER}, the family's supporter",
    }
    for who, documents in got.items():
        for number, text in documents.items():
            whole = " ".join(text)
            where = f"{who}'s {number}"
            # Page numbers on every page, and no nearly empty last page.
            for n, page in enumerate(text, start=1):
                assert f"Page {n} of {len(text)}" in page, where
            if len(text) > 1:
                assert len(text[-1]) > 0.3 * len(text[0]), f"{where}: a nearly empty last page"
            assert not INTERNAL.search(whole), f"{where}: {INTERNAL.search(whole)}"
            # Addressed to its reader, and to no one else.
            own = labels.get(who)
            copies_for = re.findall(r"Copy for: [^.]*?(?= You | This | [A-Z][a-z]+ \d|$)", whole)
            if own is None:
                assert "Copy for:" not in whole, where
            else:
                assert whole.count("Copy for:") == 1, where
                assert own in whole, where
                assert all(c.startswith(own[:30]) for c in copies_for), (where, copies_for)
            private = who in ("family", "mediator") and number.startswith("MI")
            if number.startswith("MI"):
                assert (ADJUSTMENT in whole) is private, where
                assert (SUPPORTER in whole) is (private or who == "supporter"), where
                assert "booked for 1 hour" in whole, where
                assert "2 to 3 hours" not in whole, where
            else:
                assert ADJUSTMENT not in whole, where
            if number.startswith("AG"):
                assert rid in whole, where
                assert "decided not to carry out an EHC needs assessment" in whole, where
                assert CHILD_NAME in whole, where  # the family and the council signed it
    family_invitation = " ".join(next(t for n, t in got["family"].items() if n.startswith("MI")))
    assert "You are invited to a mediation meeting" in family_invitation
    assert "Your supporter" in family_invitation
    council_invitation = " ".join(next(t for n, t in got["la"].items() if n.startswith("MI")))
    assert "Your supporter" not in council_invitation
    assert "someone supporting the family" in council_invitation
