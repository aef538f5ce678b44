"""Opening a referral: who may refer, who the parties are, and the state it starts in.

Pure and deterministic, like ``transitions``. ``open_referral()`` is called by the workflow's
start and by the API's dry run of it (every intake rule answers the caller as a 422 before a
workflow starts). It validates what only today's date or several fields together can tell,
gives every party an id, sets the first deadlines and notices, and then (rules 2) applies the
facts already known at intake in date order through ``transitions.decide``, so a referral
entered late starts in its true state.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Final

from models.domain import deadlines as dl
from models.domain.commands import Command
from models.domain.documents import FAMILY
from models.domain.referral import (
    EDGE_RULES,
    DisagreementResolutionReferralCreate,
    MediationReferralCreate,
    Notice,
    Party,
    PartyAnswer,
    PartyKind,
    PartyState,
    PlanSection,
    Referral,
    ReferrerRole,
    Route,
    Status,
)
from models.domain.transitions import (
    Context,
    Decision,
    Effect,
    Event,
    IllegalTransition,
    InvalidCommand,
    Notify,
    _appeal_deadline,
    _consent_settled,
    _replace,
    decide,
)

#: Who must take part in a mediation once the family asks for it (see below).
MUST_ATTEND_MEDIATION: Final = frozenset({PartyKind.LOCAL_AUTHORITY, PartyKind.ICB})


def cannot_decline_mediation(party: Party) -> bool:
    """The LA cannot decline mediation, nor can the ICB: RULES.md §2, rows M1–M11, column
    "Other party may decline? No". When the family wants mediation the local authority must
    arrange it and attend (with someone who can make decisions), and so must each ICB where
    health care provision is in issue (CFA 2014 ss52–54). Their answer is ``required`` from
    the start: no party response is asked of them (the Mediation rows of
    ``transitions.LEGAL`` have no ``party_response``). In Disagreement Resolution (rows
    D1–D4) every party, a council or an ICB included, may decline.
    """
    return party.kind in MUST_ATTEND_MEDIATION


def assign_party_ids(parties: Iterable[Party], start: int = 1) -> tuple[Party, ...]:
    out: list[Party] = []
    taken = {p.id for p in parties if p.id}
    n = start
    for party in parties:
        if party.id:
            out.append(party)
            continue
        while f"party-{n}" in taken:
            n += 1
        taken.add(f"party-{n}")
        out.append(party.model_copy(update={"id": f"party-{n}"}))
    return tuple(out)


def validate_intake(
    request: MediationReferralCreate | DisagreementResolutionReferralCreate,
    received_on: date,
    today: date,
    *,
    rules: int = EDGE_RULES,
) -> list[Notice]:
    """Rules that need today's date or cross-field facts; raises ``InvalidCommand``.

    Returns the notices intake raises (rules 2: the school's autumn-term start is needed).
    """
    if received_on > today:
        raise InvalidCommand("received_on: must not be in the future", field="received_on")
    dob = request.child.date_of_birth
    if dob > received_on:
        raise InvalidCommand(
            "child.date_of_birth: after the date the referral was received",
            field="child.date_of_birth",
        )
    term = request.child.school_autumn_term_starts
    try:
        status = dl.person_status(dob, received_on, autumn_term_starts=term)
        ends = dl.compulsory_school_age_ends(dob, autumn_term_starts=term)
    except ValueError as exc:
        raise InvalidCommand(
            f"child.school_autumn_term_starts: {exc}", field="child.school_autumn_term_starts"
        ) from exc
    role = request.referrer.role
    if status == "adult":
        raise InvalidCommand(
            "child.date_of_birth: the person was 25 or over when the referral was received; "
            "SEND mediation and disagreement resolution cover children and young people under 25",
            field="child.date_of_birth",
        )
    notices: list[Notice] = []
    if rules >= EDGE_RULES and _term_start_decides(dob, received_on, term):
        # A15: which side of compulsory school age the person is on depends on a date we do
        # not have; refuse nobody on age alone, and ask for it.
        sixteenth = dl.birthday(dob, 16)
        notices.append(
            Notice(
                code="school_term_start_needed",
                message=(
                    f"The child turns 16 on {sixteenth.isoformat()}. Whether they are still of "
                    "compulsory school age, and so whether the parent or the young person "
                    "refers, depends on when their school's autumn term starts in "
                    f"{sixteenth.year}. Please tell the provider that date "
                    "(school_autumn_term_starts); until then 1 September is assumed and the "
                    "referral is not refused on age alone."
                ),
            )
        )
    elif role is ReferrerRole.YOUNG_PERSON and status != "young_person":
        raise InvalidCommand(
            "referrer.role: a young person refers in their own name only once over compulsory "
            f"school age (which ends on {ends.isoformat()} for this date of birth); until then "
            "the parent refers",
            field="referrer.role",
        )
    elif role is ReferrerRole.ALTERNATIVE_PERSON and status != "young_person":
        raise InvalidCommand(
            "referrer.role: an alternative person acts only for a young person (over compulsory "
            "school age) who lacks capacity; for a child the parent refers",
            field="referrer.role",
        )
    elif role is ReferrerRole.PARENT and status == "young_person":
        raise InvalidCommand(
            "referrer.role: the child is over compulsory school age (ended "
            f"{ends.isoformat()}), so is a young person who refers in their own name (or an "
            "alternative person if they lack capacity)",
            field="referrer.role",
        )
    if isinstance(request, MediationReferralCreate):
        decision = request.decision
        if decision.letter_date > received_on:
            raise InvalidCommand(
                "decision.letter_date: after the date the referral was received",
                field="decision.letter_date",
            )
        if decision.sent_date and decision.sent_date > received_on:
            raise InvalidCommand(
                "decision.sent_date: after the date the referral was received",
                field="decision.sent_date",
            )
    elif rules >= EDGE_RULES and request.parties_contacted_on is not None:
        contacted = request.parties_contacted_on
        if contacted > today:
            raise InvalidCommand(
                f"parties_contacted_on: {contacted.isoformat()} is in the future",
                field="parties_contacted_on",
            )
        if contacted < received_on:
            raise InvalidCommand(
                f"parties_contacted_on: {contacted.isoformat()} is before the referral was "
                f"received ({received_on.isoformat()})",
                field="parties_contacted_on",
            )
    ids = [p.id for p in _intake_parties(request) if p.id]
    if len(ids) != len(set(ids)):
        raise InvalidCommand("parties: party ids must be unique", field="parties")
    if FAMILY in ids:
        raise InvalidCommand(f"parties: the id '{FAMILY}' is reserved", field="parties")
    return notices


def _term_start_decides(dob: date, on: date, term_starts: date | None) -> bool:
    """A15: the autumn-term start is unknown and would decide whether the person is a child
    or a young person on ``on`` (a 16th birthday in August or September, between the two
    school leaving dates it could fall on)."""
    if term_starts is not None:
        return False
    sixteenth = dl.birthday(dob, 16)
    if sixteenth.month not in (8, 9):
        return False
    return dl.last_friday_in_june(sixteenth.year) < on <= dl.last_friday_in_june(sixteenth.year + 1)


def _intake_parties(
    request: MediationReferralCreate | DisagreementResolutionReferralCreate,
) -> tuple[Party, ...]:
    if isinstance(request, MediationReferralCreate):
        return (request.local_authority_contact, *request.icbs, *request.invitees)
    return (*request.parties, *request.invitees)


def open_referral(
    referral_id: str,
    request: MediationReferralCreate | DisagreementResolutionReferralCreate,
    *,
    received_on: date,
    created_at: datetime,
    ctx: Context,
) -> Decision:
    """The referral as it stands on receipt, with its first deadlines and notifications.

    Rules 2: the facts given at intake (``request.facts``) are then applied in date order,
    each exactly as its command would be (``decide``), so the referral starts in its true
    state and what they trigger happens now.
    """
    edges = ctx.rules >= EDGE_RULES
    notices = validate_intake(request, received_on, ctx.today, rules=ctx.rules)
    parties = assign_party_ids(_intake_parties(request))
    request = request.model_copy(update=_request_with_ids(request, parties))
    actioned_by = dl.referral_actioned_by(
        received_on, ctx.cal, ctx.policy.referral_action_working_days
    )
    deadlines: dict[str, dl.Deadline] = {
        dl.REFERRAL_ACTIONED_BY: dl.PROVIDER_REFERRAL_ACTION.deadline(actioned_by)
    }
    effects: list[Effect] = []
    party_states: list[PartyState]
    contacted_on: date | None = None
    if isinstance(request, MediationReferralCreate):
        status = Status.AWAITING_INFORMATION_SESSION
        certificate_required = request.certificate_required
        notices += _mediation_intake(request, received_on, deadlines, ctx)
        party_states = [
            PartyState(
                party=p,
                answer=(
                    PartyAnswer.REQUIRED if cannot_decline_mediation(p) else PartyAnswer.PENDING
                ),
            )
            for p in parties
        ]
    else:
        status = Status.AWAITING_PARTY_RESPONSES
        certificate_required = False
        if request.appealable_decision is not None:
            raise InvalidCommand(
                "route: a disagreement about an appealable EHC decision "
                f"({request.appealable_decision.value}) belongs to Mediation, which gives the "
                "family the certificate it needs to appeal; open a mediation referral instead",
                field="route",
            )
        notices.append(
            Notice(
                code="no_certificate",
                message="Disagreement Resolution never issues a mediation certificate; it does "
                "not affect any right of appeal.",
            )
        )
        # The response window is the service's clock: it runs from the day the parties are
        # actually asked (rules 2), not from the day the referral was received.
        contacted_on = (request.parties_contacted_on or ctx.today) if edges else received_on
        other = {p.id for p in request.parties}
        party_states = [
            PartyState(party=p, asked_on=contacted_on if p.id in other else None) for p in parties
        ]
        respond_by = dl.dr_responses_due_by(
            contacted_on, ctx.policy.dr_response_working_days, ctx.cal
        )
        deadlines[dl.PARTY_RESPONSES_DUE_BY] = dl.DR_CONSENT.deadline(respond_by)
        remind_on = dl.add_working_days(contacted_on, ctx.policy.dr_reminder_working_days, ctx.cal)
        if not edges:
            effects.append(
                Notify(
                    template="dr_consent_request",
                    recipients=tuple(p.id or "" for p in request.parties),
                    data={"respond_by": respond_by.isoformat()},
                )
            )
        elif respond_by >= ctx.today:
            # Asked already, and the reminder day has come: the service's first letter is
            # the reminder. A window already over asks nothing: the clock settles it at once.
            late = remind_on <= ctx.today
            effects.append(
                Notify(
                    template="dr_consent_reminder" if late else "dr_consent_request",
                    recipients=tuple(p.id or "" for p in request.parties),
                    data={
                        "respond_by": respond_by.isoformat(),
                        "asked_on": contacted_on.isoformat(),
                    },
                )
            )
            if late:
                party_states = [
                    p.model_copy(update={"reminded_on": ctx.today}) if p.asked_on else p
                    for p in party_states
                ]
    referral = Referral(
        id=referral_id,
        route=request.route,
        status=status,
        local_authority=request.local_authority,
        received_on=received_on,
        created_at=created_at,
        request=request.model_copy(update={"facts": ()}),
        certificate_required=certificate_required,
        notices=tuple(notices),
        deadlines=deadlines,
        parties=tuple(party_states),
        rules=ctx.rules,
        parties_contacted_on=contacted_on if edges else None,
    )
    referral = _replace(referral, appeal_deadline=_appeal_deadline(referral, ctx.cal))
    if edges:
        referral = _replace(referral, notices=(*referral.notices, *_appeal_notices(referral, ctx)))
    events = [
        Event(
            type="referral.created",
            on=received_on,
            actor=ctx.actor,
            data={
                "route": request.route.value,
                "status": status.value,
                "local_authority": request.local_authority,
                "notices": [n.code for n in referral.notices],
            },
        )
    ]
    opened = Decision(referral, tuple(effects), tuple(events))
    if edges and request.facts:
        return _apply_facts(opened, request.facts, ctx)
    return opened


def _mediation_intake(
    request: MediationReferralCreate,
    received_on: date,
    deadlines: dict[str, dl.Deadline],
    ctx: Context,
) -> list[Notice]:
    """DL-01 (adds it to ``deadlines``) and the notices a mediation referral opens with."""
    notices: list[Notice] = []
    certificate_required = request.certificate_required
    contact_by = dl.contact_mediation_adviser_by(request.decision.decision_date)
    late = received_on > contact_by
    # DL-01 is the family's step towards a certificate: none where no certificate is needed
    # to appeal (rules 2).
    if certificate_required or ctx.rules < EDGE_RULES:
        deadlines[dl.CONTACT_ADVISER_BY] = dl.CONTACT_ADVISER.deadline(
            contact_by, met_on=None if late else received_on, breached=late
        )
    if late and certificate_required:
        notices.append(
            Notice(
                code="late_contact",
                message=(
                    f"The mediation adviser was contacted on {received_on.isoformat()}, "
                    f"after {contact_by.isoformat()} (2 months from the decision). "
                    "The referral goes ahead and a certificate can still be issued, but an "
                    "appeal may need to ask the Tribunal for an extension of time."
                ),
            )
        )
    if request.section_i_only:
        notices.append(
            Notice(
                code="section_i_only",
                message=(
                    "Only section I (the named school or placement) is disputed: no "
                    "mediation certificate is needed to appeal to the Tribunal. "
                    "Mediation is still available if the family wants it."
                ),
            )
        )
    elif request.health_or_social_care_only:
        notices.append(
            Notice(
                code="no_tribunal_appeal",
                message=(
                    "Only health and/or social care sections are disputed: these are not "
                    "appealable to the Tribunal on their own, so no certificate is issued. "
                    "Mediation is available; complaints go to the NHS or the council."
                ),
            )
        )
    elif PlanSection.I in request.decision.sections:
        notices.append(
            Notice(
                code="section_i_included",
                message="Section I is disputed with other sections: a certificate is "
                "needed for the appeal (section I alone would not need one).",
            )
        )
    return notices


def _appeal_notices(referral: Referral, ctx: Context) -> list[Notice]:
    """Rules 2: a dispute that needs no certificate whose appeal deadline has already passed."""
    if referral.route is not Route.MEDIATION or referral.certificate_required:
        return []
    deadline = referral.appeal_deadline
    if deadline is None or deadline >= ctx.today:
        return []
    return [
        Notice(
            code="appeal_deadline_passed",
            message=(
                f"The deadline to appeal this decision to the Tribunal was {deadline.isoformat()} "
                "(2 months from the decision; no mediation certificate is needed for this "
                "dispute, so nothing extends it). A late appeal needs the Tribunal's permission: "
                "the family should send it as soon as possible with the reasons it is late."
            ),
        )
    ]


def _apply_facts(opened: Decision, facts: Iterable[Command], ctx: Context) -> Decision:
    """Rules 2: apply the facts known at intake in date order, through ``decide``.

    A fact not possible at its point is an ``InvalidCommand`` naming ``facts.<n>``. Before
    a fact dated after the Disagreement Resolution response window, the window is settled
    as the clock would have settled it, so a late answer is treated as it would have been.
    """
    referral = opened.referral
    effects = list(opened.effects)
    events = list(opened.events)
    ordered = sorted(enumerate(facts), key=lambda item: (_fact_on(item[1]), item[0]))
    for n, fact in ordered:
        on = _fact_on(fact)
        consent = referral.deadlines.get(dl.PARTY_RESPONSES_DUE_BY)
        if (
            referral.status is Status.AWAITING_PARTY_RESPONSES
            and consent is not None
            and on > consent.due_on
        ):
            referral, fx, ev = _consent_settled(referral, ctx, consent.due_on, final=True)
            effects += fx
            events += ev
        try:
            decision = decide(referral, fact, ctx)
        except IllegalTransition as exc:
            raise InvalidCommand(f"facts.{n}: {exc.message}", field=f"facts.{n}") from exc
        except InvalidCommand as exc:
            field = f"facts.{n}.{exc.field}" if exc.field else f"facts.{n}"
            raise InvalidCommand(f"facts.{n}.{exc.message}", field=field) from exc
        referral = decision.referral
        effects += decision.effects
        events += decision.events
    # Ask only those still to answer, and only while their answer is still awaited.
    pending = {p.id for p in referral.parties if p.asked_on and p.answer is PartyAnswer.PENDING}
    kept: list[Effect] = []
    for effect in effects:
        if isinstance(effect, Notify) and effect.template in CONSENT_ASKS:
            recipients = tuple(r for r in effect.recipients if r in pending)
            if not recipients or referral.status is not Status.AWAITING_PARTY_RESPONSES:
                continue
            effect = Notify(effect.template, recipients, effect.data)
        kept.append(effect)
    referral = _replace(
        referral,
        parties=tuple(
            p if p.id in pending else p.model_copy(update={"reminded_on": None})
            for p in referral.parties
        ),
    )
    return Decision(referral, tuple(kept), tuple(events))


CONSENT_ASKS = frozenset({"dr_consent_request", "dr_consent_reminder"})


def _fact_on(fact: Command) -> date:
    on = getattr(fact, "on", None)
    assert isinstance(on, date), "facts carry their date (validated at intake)"
    return on


def _request_with_ids(
    request: MediationReferralCreate | DisagreementResolutionReferralCreate,
    parties: tuple[Party, ...],
) -> dict[str, Any]:
    if isinstance(request, MediationReferralCreate):
        n_icb = len(request.icbs)
        return {
            "local_authority_contact": parties[0],
            "icbs": parties[1 : 1 + n_icb],
            "invitees": parties[1 + n_icb :],
        }
    n = len(request.parties)
    return {"parties": parties[:n], "invitees": parties[n:]}
