"""Notices at the lifecycle edges: none asks anyone to act by a date already past, the family
is told in plain words what an ending means for their right of appeal, and a cancelled
meeting's notice carries its calendar entry cancelled (same UID, higher SEQUENCE) to every
invitee, the mediator included."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import icalendar
import pytest
from pypdf import PdfReader

from activities.notify import cancellation_attachment, notification_text
from models.adapters.pdf import Issuer, Letterhead, long_date, render
from models.messages import NotificationRequest
from tests.documents import referrals as R
from tests.factories import mediation_body

ISSUER = Issuer(name="Kids", phone="03330 062 835", email="senmediation@kids.org.uk")
LETTERHEAD = Letterhead(ISSUER, "Hertfordshire County Council", "https://send.example.org")
SENT = date(2026, 6, 10)
PAST = SENT - timedelta(days=5)
AHEAD = SENT + timedelta(days=5)


def text(template: str, recipient: str = "family", **data: str) -> str:
    subject, body = notification_text(template, data, "ref-1", ISSUER, recipient, sent_on=SENT)
    return f"{subject}\n{body}"


@pytest.mark.parametrize(
    ("template", "field"),
    [
        ("dr_consent_request", "respond_by"),
        ("dr_consent_reminder", "respond_by"),
        ("mediation_requested_la", "arrange_by"),
        ("icb_notification", "arrange_by"),
        ("action_reminder", "due_on"),
    ],
)
def test_no_notice_asks_anyone_to_act_by_a_date_already_past_when_sent_late(
    template: str, field: str
) -> None:
    on_time = text(template, "la", **{field: AHEAD.isoformat()})
    assert f"by {long_date(AHEAD)}" in on_time
    late = text(template, "la", **{field: PAST.isoformat()})
    past = long_date(PAST)
    assert past in late  # it says what is overdue...
    asks = ("Please tell Kids by", "must arrange mediation by", "must be arranged by", "is due")
    assert not any(ask in late for ask in asks)  # ...and asks for nothing by then
    assert any(words in late for words in ("has passed", "was due by"))


def test_the_la_is_told_the_certificate_follows_when_the_30_days_are_over() -> None:
    late = text(
        "mediation_requested_la", "la", arrange_by=PAST.isoformat(), certificate_required="true"
    )
    assert "issued a mediation certificate now" in late
    assert "Mediation can still take place" in late


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"appeal": "dr"}, "does not affect any right of appeal"),
        ({"appeal": "no_tribunal"}, "cannot be appealed to the SEND Tribunal on their own"),
        (
            {"appeal": "certificate_issued", "appeal_deadline": AHEAD.isoformat()},
            f"must receive your appeal by 5pm on {long_date(AHEAD)}",
        ),
        (
            {"appeal": "no_certificate_needed", "appeal_deadline": AHEAD.isoformat()},
            "You do not need a mediation certificate",
        ),
        (
            {"appeal": "certificate_issued", "appeal_deadline": PAST.isoformat()},
            "ask the Tribunal to accept a late appeal",
        ),
        (
            {"appeal": "certificate_needed", "contact_by": AHEAD.isoformat()},
            f"contact Kids by {long_date(AHEAD)}",
        ),
        (
            {"appeal": "certificate_needed", "contact_by": PAST.isoformat()},
            "the Tribunal may need to give you more time",
        ),
    ],
)
@pytest.mark.parametrize(
    "template", ["referral_withdrawn", "referral_cancelled", "referral_closed"]
)
def test_family_is_told_what_the_ending_means_for_their_appeal(
    template: str, data: dict[str, str], words: str
) -> None:
    assert words in text(template, **data)
    assert words not in text(template, "la", **data)  # the family's business only


def test_cancelled_meeting_notice_carries_the_calendar_entry_cancelled() -> None:
    booked = R.booked()
    invitation = render("invitation", booked, R.number("MI"), LETTERHEAD, meeting_id="meeting-1")
    assert invitation.calendar is not None
    withdrawn = R.apply(booked, date(2026, 3, 3), "withdraw")
    request = NotificationRequest(
        key="k:effect-9",
        referral_id=withdrawn.id,
        template="meeting_cancelled",
        recipients=("family", "mediator"),
        data={"meeting": "meeting-1", "reason": "referral_withdrawn", "mediator": "med-1"},
    )
    (attachment,) = cancellation_attachment(withdrawn, request, ISSUER)
    assert attachment.content_type == "text/calendar; method=CANCEL"
    sent = icalendar.Calendar.from_ical(invitation.calendar)
    cancel = icalendar.Calendar.from_ical(attachment.data)
    (first,) = sent.walk("VEVENT")
    (then,) = cancel.walk("VEVENT")
    assert (str(sent["METHOD"]), str(cancel["METHOD"])) == ("PUBLISH", "CANCEL")
    assert str(then["UID"]) == str(first["UID"])
    assert then.decoded("SEQUENCE") > first.decoded("SEQUENCE")
    assert str(then["STATUS"]) == "CANCELLED"
    assert then.decoded("DTSTART") == first.decoded("DTSTART")
    legacy = request.model_copy(update={"data": {"meeting": "meeting-1"}})
    assert cancellation_attachment(withdrawn, legacy, ISSUER) == ()


def test_certificate_after_full_agreement_says_so_and_keeps_the_appeal_deadline() -> None:
    signed = R.signed()  # mediation held 16 Mar 2026, full agreement (A16)
    (certificate,) = signed.certificates
    pdf = render("certificate", signed, certificate.number, LETTERHEAD).pdf
    words = " ".join(
        " ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages
    )
    assert "Mediation took place on Monday 16 March 2026 and everyone reached an agreement" in words
    assert "Not every issue was resolved" not in words
    assert certificate.appeal_deadline is not None
    assert long_date(certificate.appeal_deadline) in words


INTERNAL = re.compile(r"RULES\.md|\bDL-\d|\b[AMW]\d{1,2}\b|\d{4}-\d{2}-\d{2}")
NEW_TEMPLATES = ("referral_cancelled", "referral_closed", "referral_reopened", "meeting_cancelled")


def test_new_notices_and_texts_name_no_internal_rule_and_write_dates_out() -> None:
    late = R.opened(
        mediation_body(
            child={"name": "A", "date_of_birth": "2009-09-03"},
            decision={"type": "plan_contents", "letter_date": "2026-01-14", "sections": ["I"]},
        ),
        date(2026, 6, 1),
    )
    notices = {n.code: n.message for n in late.notices}
    assert {"school_term_start_needed", "appeal_deadline_passed"} <= set(notices)
    texts = [notices["school_term_start_needed"].split(". Whether")[1]]
    texts.append(notices["appeal_deadline_passed"].split(" (2 months")[1])
    data = {
        "reason": "nobody answered",
        "window_ended_on": PAST.isoformat(),
        "reopen_until": AHEAD.isoformat(),
        "closed_on": PAST.isoformat(),
        "answered_on": PAST.isoformat(),
        "appeal": "certificate_needed",
        "contact_by": AHEAD.isoformat(),
        "appeal_deadline": AHEAD.isoformat(),
        "meeting": "meeting-1",
        "starts_at": f"{AHEAD.isoformat()}T10:00:00+01:00",
    }
    for template in (*NEW_TEMPLATES, "dr_not_going_ahead", "referral_withdrawn"):
        for recipient in ("family", "la", "mediator"):
            texts.append(text(template, recipient, **data))
    found = [t for t in texts if INTERNAL.search(t)]
    assert not found, found
    assert "because nobody answered by Friday 5 June 2026, the last day to answer" in text(
        "dr_not_going_ahead", **data
    )
