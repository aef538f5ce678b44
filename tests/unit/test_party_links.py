"""Personal links: expiry, state, and the rules-3 commands they send (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from models.domain import transitions as tr
from models.domain.party_links import (
    LinkState,
    Purpose,
    actor_for,
    command_body,
    expires_at,
    link_state,
    new_token,
    token_digest,
    well_formed,
)
from models.domain.referral import EDGE_RULES, PAGES_RULES, Route
from tests.unit.test_transitions import BOOK, COMMAND, apply, ctx, opened

SENT = datetime(2026, 6, 1, 9, tzinfo=UTC)


def test_token_is_256_random_bits_and_only_its_digest_is_kept_when_minted() -> None:
    token = new_token()
    assert well_formed(token)
    assert token != new_token()
    assert token_digest(token) != token
    assert len(token_digest(token)) == 64
    assert not well_formed(token[:-1] + "/")


def test_link_expires_at_the_decisions_own_deadline_when_it_has_one() -> None:
    # DR: the end of the last day to answer, Europe/London (BST: 23:00 UTC the day before).
    assert expires_at(
        Purpose.DR_CONSENT, sent_at=SENT, days=30, answer_by=date(2026, 6, 15)
    ) == datetime(2026, 6, 15, 23, tzinfo=UTC)
    starts = datetime(2026, 6, 20, 9, tzinfo=UTC)
    assert expires_at(Purpose.MEETING_REPLY, sent_at=SENT, days=30, meeting_starts=starts) == starts
    assert expires_at(Purpose.MEDIATION_DECISION, sent_at=SENT, days=30) == SENT + timedelta(
        days=30
    )


@pytest.mark.parametrize(
    ("used", "revoked", "superseded", "late", "state"),
    [
        (None, None, False, False, LinkState.OPEN),
        (SENT, None, False, True, LinkState.USED),
        (None, SENT, True, False, LinkState.SUPERSEDED),
        (None, SENT, False, False, LinkState.REVOKED),
        (None, None, False, True, LinkState.EXPIRED),
    ],
)
def test_link_state_when_used_revoked_superseded_or_expired(
    used: datetime | None, revoked: datetime | None, superseded: bool, late: bool, state: LinkState
) -> None:
    expires = SENT + timedelta(days=1)
    now = expires + timedelta(seconds=1) if late else SENT
    assert (
        link_state(
            now=now, expires=expires, used_at=used, revoked_at=revoked, superseded=superseded
        )
        is state
    )


def test_page_answers_for_the_links_party_only_when_the_form_names_another() -> None:
    body = command_body(
        Purpose.DR_CONSENT, "decline", "school", None, {"reason": "No staff", "party_id": "la"}
    )
    assert body["party_id"] == "school"
    assert actor_for("school") == "party:school"
    assert actor_for("family") == "family"


def test_meeting_reply_is_refused_when_the_referral_predates_links() -> None:
    referral = opened(Route.MEDIATION).model_copy(update={"rules": EDGE_RULES})
    referral = apply(apply(referral, "request_mediation"), "book_meeting", **BOOK)
    reply = COMMAND.validate_python(
        {
            "command": "meeting_reply",
            "meeting_id": "meeting-1",
            "invitee": "la",
            "answer": "attending",
        }
    )
    assert "meeting_reply" not in tr.allowed_commands(referral)
    with pytest.raises(tr.IllegalTransition):
        tr.check(referral, reply, referral.received_on, ctx().cal)


def test_rearrange_request_is_recorded_and_reaches_the_provider_when_rules_3() -> None:
    referral = opened(Route.MEDIATION)
    assert referral.rules == PAGES_RULES
    referral = apply(apply(referral, "request_mediation"), "book_meeting", **BOOK)
    reply = COMMAND.validate_python(
        {
            "command": "meeting_reply",
            "meeting_id": "meeting-1",
            "invitee": "la",
            "answer": "rearrange",
            "reason": "Away that week",
        }
    )
    decision = tr.decide(referral, reply, ctx())
    meeting = decision.referral.meetings[0]
    assert [(r.invitee, r.answer, r.reason) for r in meeting.replies] == [
        ("la", "rearrange", "Away that week")
    ]
    notify = decision.effects[0]
    assert isinstance(notify, tr.Notify)
    assert (notify.template, notify.recipients) == ("meeting_reply", (tr.PROVIDER,))
    with pytest.raises(tr.InvalidCommand, match="invitee"):
        tr.check(
            referral,
            COMMAND.validate_python(
                {
                    "command": "meeting_reply",
                    "meeting_id": "meeting-1",
                    "invitee": "nobody",
                    "answer": "attending",
                }
            ),
            referral.received_on,
            ctx().cal,
        )


def test_family_is_asked_for_its_decision_after_the_session_when_rules_3() -> None:
    session = COMMAND.validate_python({"command": "information_session"})
    asked = tr.decide(opened(Route.MEDIATION), session, ctx())
    assert [e.template for e in asked.effects if isinstance(e, tr.Notify)] == ["family_decision"]
    older = opened(Route.MEDIATION).model_copy(update={"rules": EDGE_RULES})
    assert tr.decide(older, session, ctx()).effects == ()


def reply_body(invitee: str) -> dict[str, str]:
    return {
        "command": "meeting_reply",
        "meeting_id": "meeting-1",
        "invitee": invitee,
        "answer": "attending",
    }
