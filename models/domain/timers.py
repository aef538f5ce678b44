"""What time alone changes: the one timer's next wake, and everything due when it fires.

Pure and deterministic, like ``transitions``. The workflow's run loop sleeps on one named timer
until ``next_wake()`` (the day after the earliest open deadline, a reminder day, the end of a
correction window), then calls ``tick()``, which applies everything due by today: breaches,
the day-31 deemed certificate (DL-03/DL-05 passed with no meeting), the Disagreement
Resolution reminder and response deadline, agreed actions' reminders and breaches, closure
when no meeting was held by the appeal deadline, and a clock-made closure becoming final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from models.domain import deadlines as dl
from models.domain.documents import FAMILY
from models.domain.referral import (
    AgreedAction,
    Agreement,
    CertificateKind,
    Outcome,
    PartyAnswer,
    Referral,
    Status,
)
from models.domain.transitions import (
    SYSTEM,
    Context,
    Decision,
    Effect,
    Event,
    Notify,
    Policy,
    _close,
    _consent_settled,
    _finalise_closure,
    _issue_certificate,
    _replace,
    _set_deadline,
    appeal_position,
)


@dataclass(frozen=True)
class Wake:
    """The next day on which time alone changes something, and why (the timer's name)."""

    on: date
    label: str


def _wakes(referral: Referral, ctx_policy: Policy, cal: dl.HolidayCalendar) -> list[Wake]:
    if referral.closed:
        closure = referral.clock_closure
        if referral.edges and closure is not None and not closure.final:
            final = closure.reopen_until + dl.ONE_DAY
            return [Wake(final, f"closure final {final.isoformat()}: correction window ends")]
        return []
    if referral.status is Status.STOPPED:
        return []
    wakes: list[Wake] = []
    for name, deadline in referral.deadlines.items():
        if deadline.open:
            label = f"{deadline.rule} {name} due {deadline.due_on.isoformat()}"
            if name == dl.MEDIATION_ARRANGED_BY and referral.certificate_required:
                label = f"{deadline.rule} day 30 {deadline.due_on.isoformat()}: deemed certificate"
            wakes.append(Wake(deadline.due_on + dl.ONE_DAY, label))
    if referral.status is Status.AWAITING_PARTY_RESPONSES:
        remind_on = dl.add_working_days(
            _contacted_on(referral), ctx_policy.dr_reminder_working_days, cal
        )
        if any(
            p.asked_on and p.answer is PartyAnswer.PENDING and p.reminded_on is None
            for p in referral.parties
        ):
            wakes.append(Wake(remind_on, f"DR reminder to silent parties {remind_on.isoformat()}"))
    if referral.agreement and referral.status is Status.TRACKING_ACTIONS:
        for action in referral.agreement.actions:
            if action.completed_on or action.due_on is None:
                continue
            if action.reminded_on is None:
                remind_on = _action_reminder_day(action.due_on, referral.agreement, ctx_policy, cal)
                wakes.append(
                    Wake(remind_on, f"reminder {action.id} due {action.due_on.isoformat()}")
                )
            if not action.breached:
                wakes.append(
                    Wake(action.due_on + dl.ONE_DAY, f"{action.id} due {action.due_on.isoformat()}")
                )
    if (
        referral.certificates
        and referral.status is Status.ARRANGING_MEETING
        and referral.appeal_deadline is not None
    ):
        wakes.append(
            Wake(
                referral.appeal_deadline + dl.ONE_DAY,
                f"close if no meeting by appeal deadline {referral.appeal_deadline.isoformat()}",
            )
        )
    return wakes


def _action_reminder_day(
    due_on: date, agreement: Agreement, policy: Policy, cal: dl.HolidayCalendar
) -> date:
    remind = dl.working_days_before(due_on, policy.action_reminder_working_days, cal)
    signed = agreement.signed_on or agreement.recorded_on
    return max(remind, signed)


def _contacted_on(referral: Referral) -> date:
    """DR: the day the parties were asked (rules 2); before, the day of receipt."""
    if referral.edges and referral.parties_contacted_on is not None:
        return referral.parties_contacted_on
    return referral.received_on


def next_wake(referral: Referral, policy: Policy, cal: dl.HolidayCalendar) -> Wake | None:
    wakes = _wakes(referral, policy, cal)
    return min(wakes, key=lambda w: (w.on, w.label)) if wakes else None


def tick(referral: Referral, ctx: Context) -> Decision:
    """Everything due by ``ctx.today``: breaches, the deemed certificate, reminders, closure."""
    if referral.closed:
        return _finalise_closure(referral, ctx)
    if referral.status is Status.STOPPED:
        return Decision(referral)
    today = ctx.today
    effects: list[Effect] = []
    events: list[Event] = []
    start_version = referral.version

    # The 30-day clock (DL-03/DL-05): no meeting held by the date -> deemed certificate.
    arrange = referral.deadlines.get(dl.MEDIATION_ARRANGED_BY)
    if arrange is not None and arrange.open and today > arrange.due_on:
        referral = _set_deadline(
            referral, dl.MEDIATION_ARRANGED_BY, arrange.model_copy(update={"breached": True})
        )
        events.append(
            Event(
                type="deadline.breached",
                on=today,
                actor=SYSTEM,
                data={"deadline": dl.MEDIATION_ARRANGED_BY, "rule": arrange.rule},
            )
        )
        if referral.certificate_required and not referral.certificates:
            due = referral.deadlines[dl.DEEMED_CERTIFICATE_DUE_BY].due_on
            referral, fx, ev = _issue_certificate(
                referral, CertificateKind.DEEMED, due, dl.DEEMED_CERT, ctx
            )
            effects += fx
            events += ev

    # DR consent: reminders, then the response deadline.
    if referral.status is Status.AWAITING_PARTY_RESPONSES:
        remind_on = dl.add_working_days(
            _contacted_on(referral), ctx.policy.dr_reminder_working_days, ctx.cal
        )
        consent = referral.deadlines[dl.PARTY_RESPONSES_DUE_BY]
        if today > consent.due_on:
            referral, fx, ev = _consent_settled(referral, ctx, today, final=True)
            effects += fx
            events += ev
        elif today >= remind_on:
            silent = [
                p.id
                for p in referral.parties
                if p.asked_on and p.answer is PartyAnswer.PENDING and p.reminded_on is None
            ]
            if silent:
                referral = _replace(
                    referral,
                    parties=tuple(
                        p.model_copy(update={"reminded_on": today}) if p.id in silent else p
                        for p in referral.parties
                    ),
                )
                effects.append(
                    Notify(
                        template="dr_consent_reminder",
                        recipients=tuple(silent),
                        data={"respond_by": consent.due_on.isoformat()},
                    )
                )
                events += [
                    Event(type="party.reminded", on=today, actor=SYSTEM, data={"party": pid})
                    for pid in silent
                ]

    # Agreed actions: reminders before, breach after.
    if referral.agreement and referral.status is Status.TRACKING_ACTIONS:
        agreement = referral.agreement
        updated: list[AgreedAction] = []
        for action in agreement.actions:
            action_due = action.due_on
            if action.completed_on is None and action_due is not None:
                remind_on = _action_reminder_day(action_due, agreement, ctx.policy, ctx.cal)
                if action.reminded_on is None and remind_on <= today <= action_due:
                    action = action.model_copy(update={"reminded_on": today})
                    effects.append(
                        Notify(
                            template="action_reminder",
                            recipients=(action.owner,),
                            data={"action": action.id, "due_on": action_due.isoformat()},
                        )
                    )
                    events.append(
                        Event(
                            type="action.reminded",
                            on=today,
                            actor=SYSTEM,
                            data={"action": action.id},
                        )
                    )
                if not action.breached and today > action_due:
                    action = action.model_copy(update={"breached": True})
                    effects.append(
                        Notify(
                            template="action_overdue",
                            recipients=(FAMILY, action.owner),
                            data={"action": action.id, "due_on": action_due.isoformat()},
                        )
                    )
                    events.append(
                        Event(
                            type="action.breached",
                            on=today,
                            actor=SYSTEM,
                            data={"action": action.id, "due_on": action_due.isoformat()},
                        )
                    )
            updated.append(action)
        referral = _replace(
            referral, agreement=agreement.model_copy(update={"actions": tuple(updated)})
        )

    # Any other deadline past its day is breached (visible; it blocks nothing).
    for name, deadline in referral.deadlines.items():
        if deadline.open and today > deadline.due_on:
            referral = _set_deadline(referral, name, deadline.model_copy(update={"breached": True}))
            events.append(
                Event(
                    type="deadline.breached",
                    on=today,
                    actor=SYSTEM,
                    data={"deadline": name, "rule": deadline.rule},
                )
            )

    # A deemed certificate and no meeting by the appeal deadline: nothing more can help.
    if (
        referral.certificates
        and referral.status is Status.ARRANGING_MEETING
        and referral.appeal_deadline is not None
        and today > referral.appeal_deadline
    ):
        referral, closed = _close(
            referral,
            Outcome.NO_MEETING,
            today,
            SYSTEM,
            "no meeting was held; the certificate was issued and the appeal deadline has passed",
        )
        events += closed
        if referral.edges:
            effects.append(
                Notify(
                    template="referral_closed",
                    recipients=(FAMILY,),
                    data={"reason": "no_meeting", **appeal_position(referral)},
                )
            )

    if events:
        referral = _replace(referral, version=start_version + 1)
    return Decision(referral, tuple(effects), tuple(events))
