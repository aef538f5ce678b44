"""One-line readings of a referral for people: the Web UI's status line and summaries.

Nothing personal: route, status, the council's name and code, deadline names, dates and
counts only.
"""

from __future__ import annotations

from datetime import date, timedelta

from models.domain.deadlines import MEDIATION_ARRANGED_BY
from models.domain.referral import PartyAnswer, Referral, Route, Status
from models.domain.transitions import allowed_commands


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


def breaches(referral: Referral) -> list[tuple[str, date]]:
    """Every breached deadline and agreed action, ``(name, breached since)``, oldest first.

    A deadline is breached from the day after it fell due unmet (RULES.md §3: a deadline is
    met by the end of its day)."""
    found = [
        (name, d.due_on + timedelta(days=1)) for name, d in referral.deadlines.items() if d.breached
    ]
    if referral.agreement is not None:
        found += [
            (f"action:{a.id}", a.due_on + timedelta(days=1))
            for a in referral.agreement.actions
            if a.breached and a.due_on is not None
        ]
    return sorted(found, key=lambda item: (item[1], item[0]))


def latest_breach(referral: Referral) -> date | None:
    found = breaches(referral)
    return max(since for _name, since in found) if found else None


def council_label(code: str, name: str | None) -> str:
    """``Hertfordshire County Council (E10000015)``; the code alone when the name is unknown."""
    return f"{name} ({code})" if name else code


def static_summary(
    referral_id: str, route: Route, local_authority: str, council_name: str | None = None
) -> str:
    kind = "Mediation" if route is Route.MEDIATION else "Disagreement Resolution"
    return f"{kind} referral {referral_id[:8]} · {council_label(local_authority, council_name)}"


def _responsible(referral: Referral, name: str, council_name: str | None) -> str:
    """Who must act for a deadline, with the council's name where it is the council."""
    deadline = referral.deadlines.get(name)
    if deadline is None:
        return "the action's owner" if name.startswith("action:") else ""
    if deadline.responsible == "local authority":
        return council_name or f"the council ({referral.local_authority})"
    return f"the {deadline.responsible}"


def _breach_text(referral: Referral, council_name: str | None) -> str:
    found = breaches(referral)
    named = []
    for name, since in found:
        deadline = referral.deadlines.get(name)
        rule = f"{deadline.rule}, " if deadline is not None else ""
        who = _responsible(referral, name, council_name)
        named.append(f"{name} ({rule}{who}) since {since}")
    return "BREACHED: " + "; ".join(named) if named else "BREACHED"


def _next_step(referral: Referral, today: date, council_name: str | None) -> str | None:
    """What happens next: the next deadline and who must meet it, else what is awaited."""
    if referral.status is Status.CLOSED:
        return None
    upcoming = next_due(referral)
    if upcoming is not None:
        name, due_on = upcoming
        who = _responsible(referral, name, council_name)
        days = (due_on - today).days
        when = "today" if days == 0 else f"in {days} days" if days > 0 else f"{-days} days ago"
        return f"next: {name} {due_on} ({when}{', ' + who if who else ''})"
    waiting = [c.replace("_", "-") for c in allowed_commands(referral) if c != "withdraw"]
    return f"waiting for: {', '.join(waiting)}" if waiting else None


def status_line(referral: Referral, today: date, council_name: str | None = None) -> str:
    """e.g. ``arranging meeting — day 18 of 30, 12 days left (DL-03 2026-12-27) — next: …``.

    A breach names each deadline breached, its rule, who had to meet it (the council by name)
    and since when; ``next:`` says what falls due next and for whom, or which commands the
    case waits for when no deadline runs."""
    status = referral.status.value.replace("_", " ")
    parts = [status]
    arrange = referral.deadlines.get(MEDIATION_ARRANGED_BY)
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
    if any_breach(referral):
        parts.append(_breach_text(referral, council_name))
    step = _next_step(referral, today, council_name)
    if step is not None:
        parts.append(step)
    if referral.delivery_failed:
        parts.append("DELIVERY FAILED")
    if referral.status is Status.CLOSED and referral.outcome is not None:
        parts.append(f"outcome {referral.outcome.value}")
    return " — ".join(parts)
