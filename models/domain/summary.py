"""One-line readings of a referral for people: the Web UI's status line and summaries.

Nothing personal: route, status, council code, dates and counts only.
"""

from __future__ import annotations

from datetime import date

from models.domain.referral import PartyAnswer, Referral, Route, Status


def next_due(referral: Referral) -> tuple[str, date] | None:
    """The earliest open deadline, agreed actions included: ``(name, due_on)``."""
    candidates: list[tuple[date, str]] = [
        (d.due_on, name) for name, d in referral.deadlines.items() if d.open
    ]
    if referral.agreement is not None and referral.status is Status.TRACKING_ACTIONS:
        candidates += [
            (a.due_on, f"action:{a.id}")
            for a in referral.agreement.actions
            if a.due_on is not None and a.completed_on is None and not a.breached
        ]
    if not candidates:
        return None
    due_on, name = min(candidates)
    return name, due_on


def any_breach(referral: Referral) -> bool:
    actions = referral.agreement.actions if referral.agreement else ()
    return referral.breached or any(a.breached for a in actions)


def static_summary(referral_id: str, route: Route, local_authority: str) -> str:
    kind = "Mediation" if route is Route.MEDIATION else "Disagreement Resolution"
    return f"{kind} referral {referral_id[:8]} · {local_authority}"


def status_line(referral: Referral, today: date) -> str:
    """e.g. ``arranging meeting — day 18 of 30, 12 days left (DL-03 2026-12-27)``."""
    status = referral.status.value.replace("_", " ")
    parts = [status]
    arrange = referral.deadlines.get("mediation_must_be_arranged_by")
    if referral.status_clock_running and arrange and referral.mediation_requested_on:
        day = (today - referral.mediation_requested_on).days
        left = (arrange.due_on - today).days
        parts.append(f"day {day} of 30, {left} days left ({arrange.rule} {arrange.due_on})")
    if referral.route is Route.DISAGREEMENT_RESOLUTION:
        asked = [p for p in referral.parties if p.asked_on is not None]
        answered = [p for p in asked if p.answer is not PartyAnswer.PENDING]
        accepted = [p for p in asked if p.answer is PartyAnswer.ACCEPTED]
        parts.append(f"{len(answered)}/{len(asked)} answered, {len(accepted)} accepted")
        # Party ids and answers (ids are the back office's references, never names).
        parts.append("; ".join(f"{p.id} {p.answer.value.replace('_', ' ')}" for p in asked))
    meeting = referral.current_meeting
    if meeting is not None:
        parts.append(f"meeting {meeting.starts_at:%Y-%m-%d %H:%M} ({meeting.venue.kind.value})")
    if referral.certificates:
        first = referral.certificates[0]
        parts.append(f"certificate {first.kind.value} {first.issued_on}")
        if referral.appeal_deadline:
            parts.append(f"appeal by {referral.appeal_deadline}")
    if referral.agreement is not None and referral.status is Status.TRACKING_ACTIONS:
        done = sum(1 for a in referral.agreement.actions if a.completed_on)
        parts.append(f"actions {done}/{len(referral.agreement.actions)} done")
    upcoming = next_due(referral)
    if upcoming is not None and referral.status is not Status.CLOSED:
        parts.append(f"next: {upcoming[0]} {upcoming[1]}")
    if any_breach(referral):
        parts.append("BREACHED")
    if referral.delivery_failed:
        parts.append("DELIVERY FAILED")
    if referral.status is Status.CLOSED and referral.outcome is not None:
        parts.append(f"outcome {referral.outcome.value}")
    return " — ".join(parts)
