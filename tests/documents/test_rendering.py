"""The documents themselves, read back with a PDF reader (pypdf) and a calendar parser."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import icalendar
import pytest
from pypdf import PdfReader
from pypdf.generic import Destination, DictionaryObject

from models.adapters.pdf import (
    DocumentUnavailable,
    Issuer,
    Letterhead,
    clock_time,
    long_date,
    meeting_calendar,
    render,
)
from models.domain.clock import LONDON
from models.domain.documents import DocumentKind, kind_of
from models.domain.referral import Referral
from tests.documents import referrals as R

KIDS = Issuer(
    name="Kids SEND Mediation and Disagreement Resolution Service",
    phone="03330 062 835",
    email="senmediation@kids.org.uk",
    website="https://www.kids.org.uk",
)
LETTERHEAD = Letterhead(KIDS, "Hertfordshire County Council", "https://send.example.org")


def read(data: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(data))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def _flatten(outline: Any) -> list[Destination]:
    out: list[Destination] = []
    for item in outline:
        out += _flatten(item) if isinstance(item, list) else [item]
    return out


def flat(text: str) -> str:
    return " ".join(text.split())


def test_declined_certificate_states_who_what_which_when_issuer_and_appeal_deadline() -> None:
    # RULES.md W1 inputs: decision letter Wed 14 Jan 2026, certificate issued Thu 5 Mar 2026:
    # max(14 Mar, 5 Apr (Easter Sunday)) rolls past Easter Monday to Tue 7 Apr 2026.
    referral = R.declined(on=date(2026, 3, 5))
    certificate = referral.certificates[0]
    assert certificate.appeal_deadline == date(2026, 4, 7)
    doc = render("certificate", referral, certificate.number, LETTERHEAD)
    _reader, text = read(doc.pdf)
    text = flat(text)
    assert f"Certificate number {certificate.number}" in text
    assert "Name: Grace Testparent (parent)" in text
    assert "Child: Ada Testchild-Quintero" in text
    assert "The council decided not to carry out an EHC needs assessment" in text
    assert "Date of the decision letter: Wednesday 14 January 2026" in text
    assert "Type of certificate: You decided not to go to mediation" in text
    assert "Date of issue: Thursday 5 March 2026" in text
    assert f"Issued by: {KIDS.name}" in text
    assert "by 5pm on Tuesday 7 April 2026" in text
    assert f"https://send.example.org/v1/documents/{certificate.number}/verify" in text
    assert "03330 062 835" in text
    assert doc.issued_on == date(2026, 3, 5)
    assert doc.variant == "declined_mediation"


def test_section_i_note_is_printed_where_it_applies() -> None:
    referral = R.section_i()
    certificate = referral.certificates[0]
    assert certificate.section_i_note
    _reader, text = read(render("certificate", referral, certificate.number, LETTERHEAD).pdf)
    text = flat(text)
    assert "Section I (the school or placement):" in text
    assert "no certificate is needed to appeal section I alone" in text
    assert "EHC plan sections disputed: F, I" in text


def test_deemed_certificate_says_why_and_counts_from_its_issue_date() -> None:
    referral = R.deemed()
    certificate = referral.certificates[0]
    _reader, text = read(render("certificate", referral, certificate.number, LETTERHEAD).pdf)
    text = flat(text)
    assert "Mediation was not held within 30 days" in text
    assert "after the council was told on Friday 27 November 2026" in text
    assert "Date of issue: Monday 28 December 2026" in text
    assert "by 5pm on Thursday 28 January 2027" in text


def test_pdf_metadata_language_title_and_outline_for_assistive_technology() -> None:
    referral = R.declined()
    number = referral.certificates[0].number
    doc = render("certificate", referral, number, LETTERHEAD)
    reader, _text = read(doc.pdf)
    meta = reader.metadata
    assert meta is not None
    assert meta.title == f"Mediation certificate {number}"
    assert meta.author == KIDS.name
    assert meta.subject is not None
    assert "declined_mediation" in meta.subject
    root = cast(DictionaryObject, reader.trailer["/Root"])
    assert str(root["/Lang"]) == "en-GB"
    preferences = cast(DictionaryObject, root["/ViewerPreferences"])
    assert preferences["/DisplayDocTitle"]
    titles = [item.title for item in _flatten(reader.outline)]
    assert titles[:3] == [
        "Mediation certificate",
        "Who this certificate is for",
        "The decision you disagree with",
    ]
    assert "Your appeal deadline" in titles
    fonts: list[DictionaryObject] = []
    for page in reader.pages:
        resources = cast(DictionaryObject, page["/Resources"])
        for ref in cast(DictionaryObject, resources["/Font"]).values():
            fonts.append(cast(DictionaryObject, ref.get_object()))
    for font in fonts:  # every font embedded (TrueType subsets), none left to the viewer
        assert "/FontFile2" in cast(DictionaryObject, font["/FontDescriptor"])
    assert any("Vera" in str(font["/BaseFont"]) for font in fonts)
    # Issue date as the PDF's own date: the same bytes every time.
    assert meta.creation_date == datetime(2026, 3, 2, tzinfo=UTC)
    assert render("certificate", referral, number, LETTERHEAD).pdf == doc.pdf


def test_invitation_in_summer_time_shows_london_time_and_utc_in_the_calendar() -> None:
    starts = datetime(2026, 6, 15, 10, 30, tzinfo=LONDON)  # BST: 09:30 UTC
    referral = R.booked(received=date(2026, 6, 1), starts=starts)
    meeting = referral.meetings[-1]
    number = R.number("MI")
    doc = render("invitation", referral, number, LETTERHEAD, meeting_id=meeting.id)
    _reader, text = read(doc.pdf)
    text = flat(text)
    assert "Date: Monday 15 June 2026" in text
    assert "Time: 10:30am to 1pm (UK time)" in text
    assert "we will send you the link before the meeting" in text
    assert "Morgan Mediator, the mediator" in text
    assert "Hertfordshire County Council (Sam Officer, SEN officer)" in text
    assert "Lin Friend (friend), supporting the family" in text
    assert "What we have arranged: Step-free access" in text
    assert doc.calendar is not None
    assert b"DTSTART:20260615T093000Z\r\n" in doc.calendar
    (event,) = icalendar.Calendar.from_ical(doc.calendar).walk("VEVENT")
    assert event.decoded("DTSTART") == starts
    assert str(event["UID"]) == f"{referral.id}.{meeting.id}@send-referrals"


def test_calendar_escapes_and_folds_long_unicode_text() -> None:
    referral = R.booked(link="https://meet.example.org/a")
    meeting = referral.meetings[-1]
    issuer = Issuer(name="Kids; Mediation, Service — Hertfordshire ✓ " * 3, phone="0333")
    where = "Salle des fêtes, 1 Rue d'Exemple; Hertford\nFloor 2"
    data = meeting_calendar(
        referral, meeting, number="MI-0000-0000-0000-0001", issuer=issuer, where=where, link=None
    )
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))
    (event,) = icalendar.Calendar.from_ical(data).walk("VEVENT")
    assert str(event["LOCATION"]) == where
    assert str(event["SUMMARY"]).startswith("Mediation meeting (Kids; Mediation, Service —")


def test_agreement_for_disagreement_resolution_uses_its_own_words() -> None:
    referral = R.signed()
    referral = referral.model_copy(update={"route": referral.route.DISAGREEMENT_RESOLUTION})
    _reader, text = read(render("agreement", referral, R.number("AG"), LETTERHEAD).pdf)
    text = flat(text)
    assert text.startswith("Signed disagreement resolution agreement")
    assert "Agreement signed on: Monday 16 March 2026" in text


def test_nothing_to_render_is_refused() -> None:
    referral = R.declined()
    with pytest.raises(DocumentUnavailable):
        render("certificate", referral, "MC-0000-0000-0000-FFFF", LETTERHEAD)
    with pytest.raises(DocumentUnavailable):
        render("agreement", referral, R.number("AG"), LETTERHEAD)
    with pytest.raises(DocumentUnavailable):
        render("invitation", referral, R.number("MI"), LETTERHEAD, meeting_id="meeting-9")
    with pytest.raises(DocumentUnavailable):
        render("agreement", referral, referral.certificates[0].number, LETTERHEAD)


def test_numbers_and_plain_dates() -> None:
    assert kind_of("mc-1a2b-3c4d-5e6f-7a8b") == "certificate"
    assert kind_of("AG-1A2B-3C4D-5E6F-7A8B") == "agreement"
    assert kind_of("MI-1A2B-3C4D-5E6F-7A8B") == "invitation"
    assert kind_of("XX-1A2B-3C4D-5E6F-7A8B") is None
    assert kind_of("MC-1A2B") is None
    assert long_date(date(2027, 2, 1)) == "Monday 1 February 2027"
    assert clock_time(datetime(2026, 1, 5, 12, 0, tzinfo=LONDON)) == "midday"
    assert clock_time(datetime(2026, 1, 5, 14, 5, tzinfo=LONDON)) == "2:05pm"


def test_agreement_shows_weekend_due_dates_with_their_rule_when_a_limit_ends_on_a_weekend() -> None:
    # Signed Monday 16 March 2026: an assess_notify action is due 2 weeks later, Monday 30
    # March; signed on Saturday 21 March it would be due Saturday 4 April.
    referral = R.signed()
    assert referral.agreement is not None
    saturday = date(2026, 4, 4)
    action = referral.agreement.actions[0].model_copy(update={"due_on": saturday})
    agreement = referral.agreement.model_copy(
        update={"actions": (action, *referral.agreement.actions[1:])}
    )
    referral = referral.model_copy(update={"agreement": agreement})
    _reader, text = read(render("agreement", referral, "AG-0000-0000-0000-0009", LETTERHEAD).pdf)
    text = flat(text)
    assert (
        "Due by: Saturday 4 April 2026 (a Saturday: set by 2 weeks from the agreement, the legal "
        "time limit to tell the family an assessment will be carried out, which counts every "
        "day, weekends included)"
    ) in text
    assert "Due by: Wednesday 1 April 2026" in text  # a weekday: no note
    assert "Decision disputed: Hertfordshire County Council decided not to carry out" in text
    assert f"Referral: {referral.id}" in text


def test_invitation_states_the_booked_length_when_the_meeting_is_short() -> None:
    referral = R.booked()
    meeting = referral.meetings[-1]
    short = meeting.model_copy(update={"ends_at": meeting.starts_at + timedelta(hours=1)})
    referral = referral.model_copy(update={"meetings": (short,)})
    doc = render("invitation", referral, "MI-0000-0000-0000-0009", LETTERHEAD, meeting_id=short.id)
    _reader, text = read(doc.pdf)
    assert "The meeting is booked for 1 hour." in flat(text)
    assert "2 to 3 hours" not in flat(text)


@pytest.mark.parametrize("reader", ["family", "la", "senco", "mediator", "supporter"])
def test_every_copy_has_page_numbers_and_no_nearly_empty_page_when_rendered(reader: str) -> None:
    cases: list[tuple[DocumentKind, Referral, str | None, bool]] = [
        ("certificate", R.declined(), None, False),
        ("invitation", R.booked(), "MI-0000-0000-0000-0010", True),
        ("agreement", R.signed(), "AG-0000-0000-0000-0010", False),
    ]
    for kind, referral, number, meeting in cases:
        number = number or referral.certificates[0].number
        meeting_id = referral.meetings[-1].id if meeting else None
        doc = render(kind, referral, number, LETTERHEAD, meeting_id=meeting_id, reader=reader)
        pdf, _text = read(doc.pdf)
        texts = [page.extract_text() for page in pdf.pages]
        for n, page_text in enumerate(texts, start=1):
            assert f"Page {n} of {len(texts)}" in page_text, (kind, reader)
        if len(texts) > 1:
            assert len(texts[-1]) > 0.3 * len(texts[0]), (kind, reader, "nearly empty last page")
