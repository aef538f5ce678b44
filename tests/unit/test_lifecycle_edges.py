"""The lifecycle edges, pure: the two kinds of clock, facts known at intake, corrections of
what the clock decided, endings that release a booked meeting, A15/A16 and the disputes that
need no certificate. Every date below is worked out by hand (June 2026 has no bank holiday;
May 2026 has 4 and 25 May)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from models.domain import intake, timers
from models.domain import transitions as tr
from models.domain.clock import LONDON
from models.domain.documents import FAMILY
from models.domain.referral import (
    LEGACY_RULES,
    CertificateKind,
    MeetingStatus,
    Outcome,
    PartyAnswer,
    Referral,
    Status,
)
from tests.factories import dr_body, mediation_body
from tests.unit.test_transitions import CAL, COMMAND, CREATE, MEDIATOR, REMOTE, TODAY, ctx


def mediation(**overrides: Any) -> dict[str, Any]:
    """A mediation referral about a decision of Wed 20 May 2026 (DL-01: 20 Jul 2026)."""
    overrides.setdefault("decision", {"type": "refusal_to_assess", "letter_date": "2026-05-20"})
    return mediation_body(**overrides)


def open_(
    body: dict[str, Any], received_on: date = TODAY, today: date = TODAY, rules: int = 2
) -> tr.Decision:
    return intake.open_referral(
        "r-1",
        CREATE.validate_python(body),
        received_on=received_on,
        created_at=datetime(2026, 6, 1, 9, tzinfo=UTC),
        ctx=ctx(today, rules),
    )


def decide(referral: Referral, name: str, today: date = TODAY, **fields: Any) -> tr.Decision:
    command = COMMAND.validate_python({"command": name, **fields})
    return tr.decide(referral, command, ctx(today), mediator=MEDIATOR, venue=REMOTE)


def apply(referral: Referral, name: str, today: date = TODAY, **fields: Any) -> Referral:
    return decide(referral, name, today, **fields).referral


def notices(decision: tr.Decision) -> dict[str, tr.Notify]:
    return {e.template: e for e in decision.effects if isinstance(e, tr.Notify)}


def at(day: date, hour: int = 10) -> str:
    return datetime.combine(day, time(hour), tzinfo=LONDON).isoformat()


# ------------------------------------------------------------------- the two kinds of clock


def test_dr_response_window_runs_from_contact_when_the_referral_is_entered_late() -> None:
    # Received 26 days ago: the statutory DL-13 runs from receipt and is already breached;
    # the parties are asked today, so they have 10 working days from today.
    opened = open_(dr_body(), received_on=date(2026, 5, 6))
    referral = opened.referral
    assert referral.parties_contacted_on == TODAY
    assert referral.deadlines["party_responses_due_by"].due_on == date(2026, 6, 15)
    assert {p.asked_on for p in referral.parties} == {TODAY}
    request = notices(opened)["dr_consent_request"]
    assert request.data["respond_by"] == "2026-06-15"
    ticked = timers.tick(referral, ctx())
    assert ticked.referral.status is Status.AWAITING_PARTY_RESPONSES
    assert ticked.referral.deadlines["referral_actioned_by"].breached  # DL-13 from receipt
    wake = timers.next_wake(ticked.referral, tr.Policy(), CAL)
    assert wake is not None
    assert wake.on == date(2026, 6, 8)  # the reminder: 5 working days after contact


def test_dr_response_window_runs_from_parties_contacted_on_when_the_caller_gives_it() -> None:
    body = dr_body(parties_contacted_on="2026-05-27")
    opened = open_(body, received_on=date(2026, 5, 20))
    # 27 May + 10 working days = 10 Jun; the reminder day (3 Jun) has not come yet.
    assert opened.referral.deadlines["party_responses_due_by"].due_on == date(2026, 6, 10)
    assert notices(opened)["dr_consent_request"].data["asked_on"] == "2026-05-27"


def test_a_late_first_letter_is_the_reminder_and_asks_for_a_future_date() -> None:
    body = dr_body(parties_contacted_on="2026-05-20")  # reminder day 28 May has passed
    opened = open_(body, received_on=date(2026, 5, 20))
    reminder = notices(opened)["dr_consent_reminder"]
    assert reminder.data["respond_by"] == "2026-06-04"
    assert "dr_consent_request" not in notices(opened)
    assert {p.reminded_on for p in opened.referral.parties if p.asked_on} == {TODAY}


def test_no_letter_asks_for_a_date_already_past_when_the_window_is_over() -> None:
    body = dr_body(parties_contacted_on="2026-05-06")  # window ended 20 May
    opened = open_(body, received_on=date(2026, 5, 6))
    assert not [n for n in notices(opened) if n.startswith("dr_consent")]
    closed = timers.tick(opened.referral, ctx()).referral
    assert closed.status is Status.CLOSED
    assert closed.outcome is Outcome.NO_RESPONSE


def test_parties_contacted_on_cannot_be_in_the_future_or_before_receipt() -> None:
    with pytest.raises(tr.InvalidCommand, match="parties_contacted_on: 2026-06-02 is in the fut"):
        open_(dr_body(parties_contacted_on="2026-06-02"))
    with pytest.raises(tr.InvalidCommand, match="before the referral was received"):
        open_(dr_body(parties_contacted_on="2026-05-01"), received_on=date(2026, 5, 6))


def test_no_response_is_dated_the_day_after_the_window_when_the_clock_settles_late() -> None:
    referral = open_(dr_body()).referral  # due 15 Jun
    closed = timers.tick(referral, ctx(date(2026, 6, 19)))  # the worker was down for a while
    assert closed.referral.outcome is Outcome.NO_RESPONSE
    assert closed.referral.closed_on == date(2026, 6, 16)
    assert {p.answered_on for p in closed.referral.parties if p.asked_on} == {date(2026, 6, 16)}
    assert {e.on for e in closed.events if e.type == "party.no_response"} == {date(2026, 6, 16)}
    closure = closed.referral.clock_closure
    assert closure is not None
    assert closure.window_ended_on == date(2026, 6, 15)
    assert closure.reopen_until == date(2026, 7, 19)  # 30 days from when it was decided
    told = notices(closed)["dr_not_going_ahead"]
    assert told.recipients == (FAMILY,)
    assert told.data["appeal"] == "dr"
    assert told.data["reopen_until"] == "2026-07-19"


def test_outcome_is_parties_declined_when_someone_declined_and_the_rest_were_silent() -> None:
    referral = open_(dr_body()).referral
    referral = apply(referral, "party_response", party_id="la", answer="declined", reason="No")
    closed = timers.tick(referral, ctx(date(2026, 6, 16))).referral
    assert closed.outcome is Outcome.PARTIES_DECLINED
    assert closed.clock_closure is not None  # still decided by the clock: correctable


def test_legacy_rules_keep_the_window_from_receipt() -> None:
    opened = open_(dr_body(), received_on=date(2026, 5, 6), rules=LEGACY_RULES)
    assert opened.referral.deadlines["party_responses_due_by"].due_on == date(2026, 5, 20)
    closed = timers.tick(opened.referral, ctx(rules=LEGACY_RULES)).referral
    assert closed.outcome is Outcome.PARTIES_DECLINED
    assert closed.clock_closure is None
    assert tr.finished(closed)


# ------------------------------------------------------------------- corrections


def late_answer(
    referral: Referral, today: date, on: str, answer: str = "accepted", **fields: Any
) -> tr.Decision:
    """``party_response`` recorded on ``today`` for an answer given ``on``."""
    party = fields.pop("party_id", "school")
    return decide(referral, "party_response", today, party_id=party, answer=answer, on=on, **fields)


def closed_for_silence() -> Referral:
    referral = open_(dr_body()).referral
    closed = timers.tick(referral, ctx(date(2026, 6, 16))).referral
    assert closed.outcome is Outcome.NO_RESPONSE
    return closed


def test_clock_closure_reopens_when_an_answer_given_in_the_window_is_recorded() -> None:
    closed = closed_for_silence()
    assert not tr.finished(closed)
    assert "party_response" in tr.allowed_commands(closed)
    decision = late_answer(closed, date(2026, 6, 22), on="2026-06-15")
    reopened = decision.referral
    assert reopened.status is Status.ARRANGING_MEETING
    assert reopened.outcome is None
    assert reopened.closed_on is None
    assert reopened.clock_closure is None
    assert reopened.party("school").answer is PartyAnswer.ACCEPTED  # type: ignore[union-attr]
    assert reopened.party("la").answer is PartyAnswer.NO_RESPONSE  # type: ignore[union-attr]
    consent = reopened.deadlines["party_responses_due_by"]
    assert (consent.met_on, consent.breached, consent.waived) == (date(2026, 6, 15), False, False)
    assert not reopened.deadlines["referral_actioned_by"].waived  # restored
    types = [e.type for e in decision.events]
    assert types == ["party.responded", "referral.reopened", "referral.status_changed"]
    why = decision.events[1].data
    assert (why["reason"], why["closed_on"], why["from_outcome"]) == (
        "answer_recorded_late",
        "2026-06-16",
        "no_response",
    )
    told = notices(decision)
    assert told["referral_reopened"].recipients == (FAMILY,)  # who was told of the closure
    assert told["dr_going_ahead"].recipients == ("school",)


def test_an_answer_given_after_the_window_cannot_reopen() -> None:
    closed = closed_for_silence()
    with pytest.raises(tr.IllegalTransition, match="only an answer given on or before 2026-06-15"):
        late_answer(closed, date(2026, 6, 22), on="2026-06-16")


def test_a_late_refusal_is_recorded_and_the_referral_stays_closed() -> None:
    closed = closed_for_silence()
    decision = late_answer(
        closed, date(2026, 6, 22), on="2026-06-12", answer="declined", party_id="la", reason="No"
    )
    assert decision.referral.status is Status.CLOSED
    assert decision.referral.outcome is Outcome.PARTIES_DECLINED
    assert [e.type for e in decision.events] == ["party.responded", "referral.outcome_corrected"]


def test_a_clock_closure_becomes_final_after_its_correction_window() -> None:
    closed = closed_for_silence()
    assert timers.tick(closed, ctx(date(2026, 7, 16))).referral == closed  # reopen_until 16 Jul
    wake = timers.next_wake(closed, tr.Policy(), CAL)
    assert wake is not None
    assert wake.on == date(2026, 7, 17)
    final = timers.tick(closed, ctx(date(2026, 7, 17)))
    assert [e.type for e in final.events] == ["referral.closure_final"]
    assert tr.finished(final.referral)
    assert tr.allowed_commands(final.referral) == ()
    with pytest.raises(tr.IllegalTransition):
        late_answer(final.referral, date(2026, 7, 17), on="2026-06-10")


def test_breach_decided_by_the_clock_is_corrected_by_a_fact_dated_in_time() -> None:
    referral = open_(mediation()).referral  # DL-13 due Mon 8 Jun
    breached = timers.tick(referral, ctx(date(2026, 6, 9))).referral
    assert breached.deadlines["referral_actioned_by"].breached
    assert breached.breached
    decision = decide(breached, "action", date(2026, 6, 12), on="2026-06-08")
    deadline = decision.referral.deadlines["referral_actioned_by"]
    assert (deadline.met_on, deadline.breached) == (date(2026, 6, 8), False)
    assert not decision.referral.breached
    (met,) = [e for e in decision.events if e.type == "deadline.met"]
    assert met.data == {
        "deadline": "referral_actioned_by",
        "rule": "DL-13",
        "due_on": "2026-06-08",
        "met_on": "2026-06-08",
        "corrected": True,
    }


def test_breach_stands_when_the_fact_is_dated_after_the_due_day() -> None:
    referral = open_(mediation()).referral
    breached = timers.tick(referral, ctx(date(2026, 6, 10))).referral
    decision = decide(breached, "action", date(2026, 6, 12), on="2026-06-09")
    deadline = decision.referral.deadlines["referral_actioned_by"]
    assert (deadline.met_on, deadline.breached) == (date(2026, 6, 9), True)
    assert [e.type for e in decision.events] == ["referral.actioned", "deadline.missed"]


def test_meeting_held_in_time_but_recorded_late_corrects_the_30_day_breach() -> None:
    referral = apply(open_(mediation()).referral, "request_mediation")  # DL-03 1 Jul
    booked = apply(
        referral,
        "book_meeting",
        date(2026, 6, 15),
        mediator_id="m1",
        starts_at=at(date(2026, 6, 30)),
    )
    day31 = timers.tick(booked, ctx(date(2026, 7, 2)))
    deemed = day31.referral
    assert deemed.certificates[0].kind is CertificateKind.DEEMED
    assert deemed.deadlines["mediation_must_be_arranged_by"].breached
    held = decide(
        deemed, "record_meeting", date(2026, 7, 3), outcome="no_agreement", held_on="2026-06-30"
    )
    arrange = held.referral.deadlines["mediation_must_be_arranged_by"]
    assert (arrange.met_on, arrange.breached) == (date(2026, 6, 30), False)
    # A certificate once issued is never withdrawn.
    assert held.referral.certificates[0] == deemed.certificates[0]


def test_agreed_action_breach_is_corrected_when_done_in_time() -> None:
    body = dr_body()
    referral = open_(body).referral
    referral = apply(referral, "party_response", party_id="school", answer="accepted")
    referral = apply(referral, "party_response", party_id="la", answer="accepted")
    referral = apply(
        referral,
        "book_meeting",
        mediator_id="m1",
        starts_at=at(TODAY, 18),
        short_notice_consented=True,
    )
    actions = [
        {
            "id": "a1",
            "description": "Plan",
            "owner": "school",
            "kind": "agreed_date",
            "due_on": "2026-06-10",
        }
    ]
    referral = apply(referral, "record_meeting", outcome="agreement", agreed_actions=actions)
    referral = apply(referral, "sign_agreement", signatories=["family", "school", "la"])
    late = timers.tick(referral, ctx(date(2026, 6, 11))).referral
    assert late.agreement is not None
    assert late.agreement.actions[0].breached
    done = decide(late, "complete_action", date(2026, 6, 12), action_id="a1", on="2026-06-10")
    assert done.referral.agreement is not None
    assert not done.referral.agreement.actions[0].breached
    assert done.events[0].data["breach_corrected"] is True


# ------------------------------------------------------------------- facts at intake


def test_intake_facts_apply_in_date_order_through_the_command_rules() -> None:
    body = mediation(
        facts=[
            {"command": "decline_mediation", "on": "2026-05-28"},
            {"command": "action", "on": "2026-05-21"},
            {"command": "information_session", "on": "2026-05-22"},
        ]
    )
    opened = open_(body, received_on=date(2026, 5, 20))
    referral = opened.referral
    assert referral.status is Status.CLOSED
    assert referral.outcome is Outcome.DECLINED_MEDIATION
    assert referral.actioned_on == date(2026, 5, 21)
    assert referral.information_session_on == date(2026, 5, 22)
    (certificate,) = referral.certificates
    assert certificate.kind is CertificateKind.DECLINED_MEDIATION
    assert certificate.issued_on == TODAY  # issued now, as the command would have
    assert certificate.due_on == date(2026, 6, 2)  # 28 May + 3 working days
    assert any(isinstance(e, tr.DispatchCertificate) for e in opened.effects)
    assert referral.request.facts == ()  # applied, not kept in the request
    assert [e.on for e in opened.events if e.type != "deadline.met"][:4] == [
        date(2026, 5, 20),
        date(2026, 5, 21),
        date(2026, 5, 22),
        date(2026, 5, 22),
    ]


def test_intake_fact_that_the_rules_refuse_is_invalid_naming_it() -> None:
    body = mediation(facts=[{"command": "decline_mediation", "on": "2026-05-28"}])
    with pytest.raises(
        tr.InvalidCommand, match=r"facts\.0: 'decline-mediation' is not possible now"
    ) as e:
        open_(body, received_on=date(2026, 5, 20))
    assert e.value.field == "facts.0"
    future = mediation(facts=[{"command": "action", "on": "2026-06-02"}])
    with pytest.raises(tr.InvalidCommand, match=r"facts\.0\.on: 2026-06-02 is in the future") as e:
        open_(future)
    assert e.value.field == "facts.0.on"


def test_dr_intake_facts_settle_consent_and_ask_only_who_is_left() -> None:
    facts = [
        {
            "command": "party_response",
            "party_id": "school",
            "answer": "accepted",
            "on": "2026-05-29",
        }
    ]
    opened = open_(
        dr_body(facts=facts, parties_contacted_on="2026-05-27"), received_on=date(2026, 5, 26)
    )
    referral = opened.referral
    assert referral.status is Status.AWAITING_PARTY_RESPONSES
    assert notices(opened)["dr_consent_request"].recipients == ("la",)
    facts.append(
        {
            "command": "party_response",
            "party_id": "la",
            "answer": "declined",
            "reason": "No",
            "on": "2026-05-30",
        }
    )
    opened = open_(
        dr_body(facts=facts, parties_contacted_on="2026-05-27"), received_on=date(2026, 5, 26)
    )
    assert opened.referral.status is Status.ARRANGING_MEETING
    assert "dr_consent_request" not in notices(opened)
    assert notices(opened)["dr_going_ahead"].recipients == (FAMILY, "school")


def test_dr_intake_fact_after_the_window_meets_the_closure_the_clock_made() -> None:
    facts = [
        {
            "command": "party_response",
            "party_id": "school",
            "answer": "accepted",
            "on": "2026-05-29",
        }
    ]
    body = dr_body(facts=facts, parties_contacted_on="2026-05-06")  # window ended 20 May
    with pytest.raises(
        tr.InvalidCommand, match=r"facts\.0: .*only an answer given on or before 2026-05-20"
    ):
        open_(body, received_on=date(2026, 5, 6))


# ------------------------------------------------------------------- endings


def booked_mediation() -> Referral:
    referral = apply(open_(mediation()).referral, "request_mediation")
    return apply(referral, "book_meeting", mediator_id="m1", starts_at=at(date(2026, 6, 15)))


def test_withdraw_while_booked_cancels_the_meeting_and_tells_everyone_invited() -> None:
    decision = decide(booked_mediation(), "withdraw")
    referral = decision.referral
    assert referral.status is Status.CLOSED
    assert referral.current_meeting is None
    assert referral.meetings[0].status is MeetingStatus.CANCELLED
    cancelled = notices(decision)["meeting_cancelled"]
    assert set(cancelled.recipients) == {FAMILY, "la", "senco", "mediator", "supporter"}
    assert cancelled.data["reason"] == "referral_withdrawn"
    assert cancelled.data["mediator"] == "m1"
    withdrawn = notices(decision)["referral_withdrawn"]
    assert withdrawn.data["appeal"] == "certificate_needed"
    assert withdrawn.data["contact_by"] == "2026-07-20"  # DL-01: 2 months from 20 May
    types = [e.type for e in decision.events]
    assert types.index("meeting.cancelled") < types.index("referral.closed")


def test_operator_cancellation_closes_as_cancelled_and_releases_the_meeting() -> None:
    decision = tr.cancel_by_operator(booked_mediation(), ctx())
    referral = decision.referral
    assert (referral.status, referral.outcome) == (Status.CLOSED, Outcome.CANCELLED)
    assert referral.meetings[0].status is MeetingStatus.CANCELLED
    assert decision.events[0].type == "referral.cancelled"
    assert {e.actor for e in decision.events} == {"tester"}
    assert set(notices(decision)) == {"meeting_cancelled", "referral_cancelled"}
    assert tr.finished(referral)
    assert tr.cancel_by_operator(referral, ctx()).referral == referral  # nothing twice


def test_operator_cancellation_of_a_correctable_closure_makes_it_final() -> None:
    decision = tr.cancel_by_operator(closed_for_silence(), ctx(date(2026, 6, 20)))
    assert tr.finished(decision.referral)
    assert decision.referral.outcome is Outcome.NO_RESPONSE


# ------------------------------------------------------------------- A16, A15, no certificate


def test_full_agreement_issues_the_after_mediation_certificate_and_tracks_actions() -> None:
    referral = booked_mediation()
    actions = [{"id": "a1", "description": "Amend", "owner": "la", "kind": "amend_plan"}]
    decision = decide(
        referral, "record_meeting", date(2026, 6, 15), outcome="agreement", agreed_actions=actions
    )
    referral = decision.referral
    (certificate,) = referral.certificates
    assert certificate.kind is CertificateKind.AFTER_MEDIATION
    assert certificate.due_on == date(2026, 6, 18)  # DL-07: 3 working days
    assert referral.status is Status.AGREEMENT_AWAITING_SIGNATURE
    signed = apply(referral, "sign_agreement", date(2026, 6, 16), signatories=["family", "la"])
    assert signed.status is Status.TRACKING_ACTIONS
    assert signed.agreement is not None
    assert signed.agreement.actions[0].due_on is not None


@pytest.mark.parametrize("role", ["parent", "young_person"])
def test_sixteenth_birthday_in_september_is_not_refused_on_age_alone(role: str) -> None:
    # Turns 16 on 3 Sep 2025: school leaving date 26 Jun 2026 if the term starts after
    # 3 Sep 2025, else 25 Jun 2027. On 1 Jun 2026 either reading is possible.
    body = mediation(child={"name": "A", "date_of_birth": "2009-09-03"})
    body["referrer"]["role"] = role
    notices_ = {n.code for n in open_(body).referral.notices}
    assert "school_term_start_needed" in notices_


def test_school_term_start_decides_the_role_when_it_is_known() -> None:
    # Term from 2 Sep 2025: 16 during the school year, so a child until 26 Jun 2026.
    child = {"name": "A", "date_of_birth": "2009-09-03", "school_autumn_term_starts": "2025-09-02"}
    parent = mediation(child=child)
    assert "school_term_start_needed" not in {n.code for n in open_(parent).referral.notices}
    young = mediation(child=child)
    young["referrer"]["role"] = "young_person"
    with pytest.raises(tr.InvalidCommand, match="ends on 2026-06-26"):
        open_(young)
    # Term from 4 Sep 2025: 16 before the school year began, s8(3)(a): a young person since
    # 27 Jun 2025.
    after = mediation(child={**child, "school_autumn_term_starts": "2025-09-04"})
    with pytest.raises(tr.InvalidCommand, match="ended 2025-06-27"):
        open_(after)
    with pytest.raises(tr.InvalidCommand, match=r"child\.school_autumn_term_starts"):
        open_(mediation(child={**child, "school_autumn_term_starts": "2025-05-01"}))


SECTION_I = {"type": "plan_contents", "letter_date": "2026-03-02", "sections": ["I"]}
HEALTH_ONLY: dict[str, Any] = {
    "decision": {"type": "plan_contents", "letter_date": "2026-05-20", "sections": ["G"]},
    "health_care_in_issue": True,
    "health_provision_sought": "Physiotherapy",
    "icbs": [
        {
            "id": "icb",
            "kind": "icb",
            "organisation": "NHS HWE ICB",
            "contact": {"name": "ICB", "email": "icb@example.nhs.uk"},
        }
    ],
}


def test_section_i_only_has_no_dl01_and_says_its_appeal_deadline_has_passed() -> None:
    referral = open_(mediation(decision=SECTION_I)).referral
    assert "contact_mediation_adviser_by" not in referral.deadlines
    assert referral.appeal_deadline == date(2026, 5, 5)  # 2 May (Sat) + BH Mon 4 May
    (passed,) = [n for n in referral.notices if n.code == "appeal_deadline_passed"]
    assert "2026-05-05" in passed.message


def test_la_unable_to_arrange_is_refused_saying_why_when_no_certificate_is_needed() -> None:
    referral = apply(open_(mediation(**HEALTH_ONLY)).referral, "request_mediation")
    assert "deemed_certificate_due_by" not in referral.deadlines
    assert "contact_mediation_adviser_by" not in referral.deadlines
    assert "la_unable_to_arrange" not in tr.allowed_commands(referral)
    with pytest.raises(tr.IllegalTransition, match="needs no mediation certificate to appeal"):
        decide(referral, "la_unable_to_arrange")


def test_dl05_counts_from_when_the_icb_received_the_las_notice() -> None:
    referral = open_(mediation(**HEALTH_ONLY), received_on=date(2026, 5, 20)).referral
    late = apply(referral, "request_mediation", on="2026-05-21")
    arrange = late.deadlines["mediation_must_be_arranged_by"]
    assert (arrange.rule, arrange.due_on) == ("DL-05", TODAY + timedelta(days=30))  # told today
    told = apply(referral, "request_mediation", on="2026-05-21", icb_notified_on="2026-05-26")
    assert told.deadlines["mediation_must_be_arranged_by"].due_on == date(2026, 6, 25)
    assert told.deadlines["la_must_notify_icb_by"].met_on == date(2026, 5, 26)
