"""The Web UI's live status line and the next-deadline reading: no personal data."""

from __future__ import annotations

from datetime import date

from models.domain import timers
from models.domain import transitions as tr
from models.domain.referral import Route, Status
from models.domain.summary import next_due, status_line
from tests.factories import CHILD_NAME
from tests.unit.test_transitions import CAL, TODAY, apply, opened, reach

TEMPLATES = (
    "dr_consent_request",
    "dr_consent_reminder",
    "dr_going_ahead",
    "dr_not_going_ahead",
    "mediation_requested_la",
    "icb_notification",
    "invitation_to_take_part",
    "supporter_welcome",
    "meeting_cancelled",
    "referral_withdrawn",
    "action_reminder",
    "action_overdue",
)


def test_status_line_counts_the_30_days_and_names_the_deadline() -> None:
    referral = reach(Route.MEDIATION, Status.ARRANGING_MEETING)  # DL-03: 1 Jul 2026
    line = status_line(referral, date(2026, 6, 13))
    assert line.startswith("arranging meeting — day 12 of 30, 18 days left (DL-03 2026-07-01)")
    assert "next: referral_actioned_by 2026-06-08" in line


def test_status_line_shows_each_dr_party_answer_by_id() -> None:
    referral = apply(
        opened(Route.DISAGREEMENT_RESOLUTION),
        "party_response",
        party_id="school",
        answer="declined",
        reason="Busy",
    )
    line = status_line(referral, TODAY)
    assert "1/2 answered, 0 accepted" in line
    assert "school declined; la pending" in line
    assert CHILD_NAME not in line
    assert "Busy" not in line  # reasons are free text: never on the operations screen


def test_status_line_flags_breaches_and_certificates() -> None:
    referral = reach(Route.MEDIATION, Status.ARRANGING_MEETING)
    later = timers.tick(referral, tr.Context(today=date(2026, 7, 2), cal=CAL, policy=tr.Policy()))
    line = status_line(later.referral, date(2026, 7, 2))
    assert "certificate deemed 2026-07-02" in line
    assert "BREACHED" in line


def test_next_due_includes_agreed_actions() -> None:
    referral = reach(Route.MEDIATION, Status.TRACKING_ACTIONS)
    referral = apply(referral, "action")
    assert next_due(referral) == ("action:a1", date(2026, 7, 6))  # 1 Jun + 5 weeks


def test_status_line_names_each_breach_who_and_since_when_a_deadline_passed() -> None:
    referral = reach(Route.MEDIATION, Status.ARRANGING_MEETING)
    later = timers.tick(referral, tr.Context(today=date(2026, 7, 2), cal=CAL, policy=tr.Policy()))
    line = status_line(later.referral, date(2026, 7, 2), "Hertfordshire County Council")
    assert (
        "BREACHED: referral_actioned_by (DL-13, the mediation provider) since 2026-06-09; "
        "mediation_must_be_arranged_by (DL-03, Hertfordshire County Council) since 2026-07-02"
    ) in line
    assert line.endswith(
        "waiting for: action, book-meeting, decline-mediation, la-unable-to-arrange"
    )
    assert "E10000015" not in line  # the council by name
