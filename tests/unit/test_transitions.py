"""The state machine, pure: every legal (route, status, command) and every illegal one."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter

from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain import deadlines as dl
from models.domain import intake, timers
from models.domain import transitions as tr
from models.domain.clock import LONDON
from models.domain.commands import Command
from models.domain.documents import NUMBER_RE, PREFIX, document_number
from models.domain.referral import (
    EDGE_RULES,
    PAGES_RULES,
    CertificateKind,
    MediatorSummary,
    Outcome,
    PartyAnswer,
    Referral,
    ReferralCreate,
    Route,
    Status,
    Venue,
    VenueKind,
)
from tests.factories import dr_body, mediation_body

TODAY = date(2026, 6, 1)  # a Monday
CAL = england_and_wales_calendar(2024, 2029)
MEDIATOR = MediatorSummary(id="m1", name="M", send_trained=True)
REMOTE = Venue(kind=VenueKind.REMOTE)
COMMAND: TypeAdapter[Any] = TypeAdapter(Command)
CREATE: TypeAdapter[Any] = TypeAdapter(ReferralCreate)
# Meetings in the state-table walk are held the day they are booked (short notice agreed).
MEETING_AT = datetime.combine(TODAY, time(18), tzinfo=LONDON).isoformat()
BOOK = {"mediator_id": "m1", "starts_at": MEETING_AT, "short_notice_consented": True}


def ctx(today: date = TODAY, rules: int = EDGE_RULES) -> tr.Context:
    n = iter(range(1, 1000))
    return tr.Context(
        today=today,
        cal=CAL,
        policy=tr.Policy(),
        actor="tester",
        new_number=lambda p: f"{p}-{next(n)}",
        rules=rules,
    )


def opened(route: Route) -> Referral:
    body = mediation_body(decision={"type": "refusal_to_assess", "letter_date": "2026-05-20"})
    if route is Route.DISAGREEMENT_RESOLUTION:
        body = dr_body()
    decision = intake.open_referral(
        "r-1",
        CREATE.validate_python(body),
        received_on=TODAY,
        created_at=datetime(2026, 6, 1, 9, tzinfo=UTC),
        ctx=ctx(rules=PAGES_RULES),
    )
    return decision.referral


def apply(referral: Referral, name: str, **fields: Any) -> Referral:
    command = COMMAND.validate_python({"command": name, **fields})
    return tr.decide(referral, command, ctx(), mediator=MEDIATOR, venue=REMOTE).referral


ACTIONS = [{"id": "a1", "description": "Amend", "owner": "la", "kind": "amend_plan"}]
DR_ACTIONS = [
    {
        "id": "a1",
        "description": "Meet",
        "owner": "school",
        "kind": "agreed_date",
        "due_on": "2026-07-01",
    }
]

PATHS: dict[tuple[Route, Status], list[tuple[str, dict[str, Any]]]] = {
    (Route.MEDIATION, Status.AWAITING_INFORMATION_SESSION): [],
    (Route.MEDIATION, Status.AWAITING_FAMILY_DECISION): [("information_session", {})],
    (Route.MEDIATION, Status.ARRANGING_MEETING): [("request_mediation", {})],
    (Route.MEDIATION, Status.MEETING_BOOKED): [
        ("request_mediation", {}),
        ("book_meeting", BOOK),
    ],
    (Route.MEDIATION, Status.AGREEMENT_AWAITING_SIGNATURE): [
        ("request_mediation", {}),
        ("book_meeting", BOOK),
        ("record_meeting", {"outcome": "agreement", "agreed_actions": ACTIONS}),
    ],
    (Route.MEDIATION, Status.TRACKING_ACTIONS): [
        ("request_mediation", {}),
        ("book_meeting", BOOK),
        ("record_meeting", {"outcome": "agreement", "agreed_actions": ACTIONS}),
        ("sign_agreement", {"signatories": ["family", "la"]}),
    ],
    (Route.MEDIATION, Status.CLOSED): [("withdraw", {})],
    (Route.DISAGREEMENT_RESOLUTION, Status.AWAITING_PARTY_RESPONSES): [],
    (Route.DISAGREEMENT_RESOLUTION, Status.ARRANGING_MEETING): [
        ("party_response", {"party_id": "school", "answer": "accepted"}),
        ("party_response", {"party_id": "la", "answer": "accepted"}),
    ],
    (Route.DISAGREEMENT_RESOLUTION, Status.MEETING_BOOKED): [
        ("party_response", {"party_id": "school", "answer": "accepted"}),
        ("party_response", {"party_id": "la", "answer": "accepted"}),
        ("book_meeting", BOOK),
    ],
    (Route.DISAGREEMENT_RESOLUTION, Status.AGREEMENT_AWAITING_SIGNATURE): [
        ("party_response", {"party_id": "school", "answer": "accepted"}),
        ("party_response", {"party_id": "la", "answer": "accepted"}),
        ("book_meeting", BOOK),
        ("record_meeting", {"outcome": "agreement", "agreed_actions": DR_ACTIONS}),
    ],
    (Route.DISAGREEMENT_RESOLUTION, Status.TRACKING_ACTIONS): [
        ("party_response", {"party_id": "school", "answer": "accepted"}),
        ("party_response", {"party_id": "la", "answer": "accepted"}),
        ("book_meeting", BOOK),
        ("record_meeting", {"outcome": "agreement", "agreed_actions": DR_ACTIONS}),
        ("sign_agreement", {"signatories": ["family", "school", "la"]}),
    ],
    (Route.DISAGREEMENT_RESOLUTION, Status.CLOSED): [("withdraw", {})],
}

# A valid example of each command, and where it leads from each state where it is legal.
EXAMPLES: dict[str, dict[str, Any]] = {
    "action": {},
    "information_session": {},
    "decline_mediation": {},
    "request_mediation": {},
    "la_unable_to_arrange": {},
    "party_response": {"party_id": "school", "answer": "declined", "reason": "No capacity"},
    "book_meeting": BOOK,
    "cancel_meeting": {"cancelled_by": "family", "reason": "Illness"},
    "record_meeting": {"outcome": "no_agreement"},
    "sign_agreement": {"signatories": ["family", "la"]},
    "complete_action": {"action_id": "a1"},
    "withdraw": {},
    "meeting_reply": {"meeting_id": "meeting-1", "invitee": "family", "answer": "attending"},
}

EXPECTED: dict[tuple[Route, Status, str], Status] = {}
for (route, status), legal in tr.LEGAL.items():
    for name in legal:
        EXPECTED[(route, status, name)] = status  # default: unchanged
M, D, S = Route.MEDIATION, Route.DISAGREEMENT_RESOLUTION, Status
EXPECTED.update(
    {
        (M, S.AWAITING_INFORMATION_SESSION, "information_session"): S.AWAITING_FAMILY_DECISION,
        (M, S.AWAITING_INFORMATION_SESSION, "request_mediation"): S.ARRANGING_MEETING,
        (M, S.AWAITING_INFORMATION_SESSION, "withdraw"): S.CLOSED,
        (M, S.AWAITING_FAMILY_DECISION, "decline_mediation"): S.CLOSED,
        (M, S.AWAITING_FAMILY_DECISION, "request_mediation"): S.ARRANGING_MEETING,
        (M, S.AWAITING_FAMILY_DECISION, "withdraw"): S.CLOSED,
        (M, S.ARRANGING_MEETING, "book_meeting"): S.MEETING_BOOKED,
        (M, S.ARRANGING_MEETING, "decline_mediation"): S.CLOSED,
        (M, S.ARRANGING_MEETING, "withdraw"): S.CLOSED,
        (M, S.MEETING_BOOKED, "cancel_meeting"): S.ARRANGING_MEETING,
        (M, S.MEETING_BOOKED, "record_meeting"): S.CLOSED,
        (M, S.MEETING_BOOKED, "decline_mediation"): S.CLOSED,
        (M, S.MEETING_BOOKED, "withdraw"): S.CLOSED,
        (M, S.AGREEMENT_AWAITING_SIGNATURE, "sign_agreement"): S.TRACKING_ACTIONS,
        (M, S.AGREEMENT_AWAITING_SIGNATURE, "withdraw"): S.CLOSED,
        (M, S.TRACKING_ACTIONS, "complete_action"): S.CLOSED,
        (M, S.TRACKING_ACTIONS, "withdraw"): S.CLOSED,
        (D, S.AWAITING_PARTY_RESPONSES, "withdraw"): S.CLOSED,
        (D, S.ARRANGING_MEETING, "book_meeting"): S.MEETING_BOOKED,
        (D, S.ARRANGING_MEETING, "withdraw"): S.CLOSED,
        (D, S.MEETING_BOOKED, "cancel_meeting"): S.ARRANGING_MEETING,
        (D, S.MEETING_BOOKED, "record_meeting"): S.CLOSED,
        (D, S.MEETING_BOOKED, "withdraw"): S.CLOSED,
        (D, S.AGREEMENT_AWAITING_SIGNATURE, "sign_agreement"): S.TRACKING_ACTIONS,
        (D, S.AGREEMENT_AWAITING_SIGNATURE, "withdraw"): S.CLOSED,
        (D, S.TRACKING_ACTIONS, "complete_action"): S.CLOSED,
        (D, S.TRACKING_ACTIONS, "withdraw"): S.CLOSED,
    }
)


def reach(route: Route, status: Status) -> Referral:
    referral = opened(route)
    for name, fields in PATHS[(route, status)]:
        referral = apply(referral, name, **fields)
    assert referral.status is status
    return referral


LEGAL_CASES = [
    pytest.param(route, status, name, id=f"{route.value}-{status.value}-{name}")
    for (route, status, name) in sorted(EXPECTED, key=str)
    if not (name == "book_meeting" and route is D and status is S.AWAITING_PARTY_RESPONSES)
    and not (name == "party_response" and status is S.ARRANGING_MEETING)
]


def legal_step(route: Route, status: Status, name: str) -> tuple[Referral, Referral]:
    before = reach(route, status)
    fields = EXAMPLES[name]
    if name == "sign_agreement" and route is D:
        fields = {"signatories": ["family", "la", "school"]}
    return before, apply(before, name, **fields)


@pytest.mark.parametrize(("route", "status", "name"), LEGAL_CASES)
def test_every_legal_command_leads_where_the_table_says(
    route: Route, status: Status, name: str
) -> None:
    before, after = legal_step(route, status, name)
    assert after.status is EXPECTED[(route, status, name)]
    assert after.version == before.version + 1


@pytest.mark.parametrize(("route", "status", "name"), LEGAL_CASES)
def test_every_deadline_a_referral_holds_is_a_catalogue_entry_when_a_command_sets_it(
    route: Route, status: Status, name: str
) -> None:
    _before, after = legal_step(route, status, name)
    specs = {(s.name, s.rule, s.description, s.responsible) for s in dl.DEADLINES}
    for deadline_name, deadline in after.deadlines.items():
        held = (deadline_name, deadline.rule, deadline.description, deadline.responsible)
        assert held in specs


ILLEGAL_CASES = [
    pytest.param(route, status, name, id=f"{route.value}-{status.value}-{name}")
    for route in Route
    for status in Status
    if (route, status) in PATHS
    for name in EXAMPLES
    if name not in tr.LEGAL[(route, status)]
]


@pytest.mark.parametrize(("route", "status", "name"), ILLEGAL_CASES)
def test_every_illegal_command_is_refused_naming_state_and_allowed(
    route: Route, status: Status, name: str
) -> None:
    referral = reach(route, status)
    command = COMMAND.validate_python({"command": name, **EXAMPLES[name]})
    with pytest.raises(tr.IllegalTransition) as caught:
        tr.check(referral, command, TODAY, CAL)
    assert status.value in caught.value.message
    assert caught.value.allowed == tr.allowed_commands(referral)


def test_command_models_cover_every_legal_command() -> None:
    union, *_ = get_args(Command)
    names = {m.model_fields["command"].default for m in get_args(union)}
    assert names == {n for legal in tr.LEGAL.values() for n in legal}


def test_fact_in_the_future_is_invalid() -> None:
    referral = reach(M, S.AWAITING_INFORMATION_SESSION)
    with pytest.raises(tr.InvalidCommand, match="in the future"):
        apply(referral, "information_session", on="2026-06-02")


def test_fact_before_the_referral_is_invalid() -> None:
    referral = reach(M, S.AWAITING_INFORMATION_SESSION)
    with pytest.raises(tr.InvalidCommand, match="before the referral was received"):
        apply(referral, "information_session", on="2026-05-29")


def test_action_twice_is_refused() -> None:
    referral = apply(reach(M, S.AWAITING_INFORMATION_SESSION), "action")
    with pytest.raises(tr.IllegalTransition, match="already actioned"):
        apply(referral, "action")


def test_decline_issues_declined_certificate_due_in_three_working_days() -> None:
    referral = apply(reach(M, S.AWAITING_FAMILY_DECISION), "decline_mediation")
    assert referral.outcome is Outcome.DECLINED_MEDIATION
    (certificate,) = referral.certificates
    assert certificate.kind is CertificateKind.DECLINED_MEDIATION
    assert certificate.issued_on == TODAY
    assert certificate.due_on == date(2026, 6, 4)
    # decision 20 May + 2 months = 20 Jul; certificate 1 Jun + 1 month = 1 Jul: 20 Jul (Mon)
    assert referral.appeal_deadline == date(2026, 7, 20)


def test_section_i_only_decline_issues_no_certificate() -> None:
    body = mediation_body(
        decision={"type": "plan_contents", "letter_date": "2026-05-20", "sections": ["I"]}
    )
    referral = intake.open_referral(
        "r-2",
        CREATE.validate_python(body),
        received_on=TODAY,
        created_at=datetime(2026, 6, 1, tzinfo=UTC),
        ctx=ctx(),
    ).referral
    referral = apply(apply(referral, "information_session"), "decline_mediation")
    assert referral.certificates == ()
    assert referral.appeal_deadline == date(2026, 7, 20)  # decision + 2 months only
    assert "no certificate is needed" in (referral.closure_reason or "")


def test_health_in_issue_notifies_icb_and_meets_dl04_at_once() -> None:
    body = mediation_body(
        decision={"type": "plan_contents", "letter_date": "2026-05-20", "sections": ["F", "G"]},
        health_care_in_issue=True,
        health_provision_sought="Speech and language therapy",
        icbs=[
            {
                "id": "icb",
                "kind": "icb",
                "organisation": "NHS HWE ICB",
                "contact": {"name": "ICB", "email": "icb@example.nhs.uk"},
            }
        ],
    )
    referral = intake.open_referral(
        "r-3",
        CREATE.validate_python(body),
        received_on=TODAY,
        created_at=datetime(2026, 6, 1, tzinfo=UTC),
        ctx=ctx(),
    ).referral
    assert referral.party("icb") is not None
    assert referral.party("icb").answer is PartyAnswer.REQUIRED  # type: ignore[union-attr]
    command = COMMAND.validate_python({"command": "request_mediation"})
    decision = tr.decide(referral, command, ctx())
    dl04 = decision.referral.deadlines["la_must_notify_icb_by"]
    assert dl04.rule == "DL-04"
    assert dl04.due_on == date(2026, 6, 4)
    assert dl04.met_on == TODAY
    templates = {e.template for e in decision.effects if isinstance(e, tr.Notify)}
    assert {"icb_notification", "mediation_requested_la", "invitation_to_take_part"} <= templates


def test_health_only_dispute_uses_icb_30_days_and_no_certificate() -> None:
    body = mediation_body(
        decision={"type": "plan_contents", "letter_date": "2026-05-20", "sections": ["G"]},
        health_care_in_issue=True,
        health_provision_sought="Physiotherapy",
        icbs=[
            {
                "id": "icb",
                "kind": "icb",
                "organisation": "NHS HWE ICB",
                "contact": {"name": "ICB", "email": "icb@example.nhs.uk"},
            }
        ],
    )
    referral = intake.open_referral(
        "r-4",
        CREATE.validate_python(body),
        received_on=TODAY,
        created_at=datetime(2026, 6, 1, tzinfo=UTC),
        ctx=ctx(),
    ).referral
    assert not referral.certificate_required
    referral = apply(referral, "request_mediation")
    assert referral.deadlines["mediation_must_be_arranged_by"].rule == "DL-05"
    assert "deemed_certificate_due_by" not in referral.deadlines
    later = timers.tick(referral, ctx(date(2026, 7, 2))).referral
    assert later.deadlines["mediation_must_be_arranged_by"].breached
    assert later.certificates == ()


def test_booking_needs_five_clear_working_days_notice_unless_consented() -> None:
    referral = reach(M, S.ARRANGING_MEETING)
    soon = datetime.combine(date(2026, 6, 5), time(10), tzinfo=LONDON).isoformat()
    with pytest.raises(tr.InvalidCommand, match="5 clear working days"):
        apply(referral, "book_meeting", mediator_id="m1", starts_at=soon)
    booked = apply(
        referral, "book_meeting", mediator_id="m1", starts_at=soon, short_notice_consented=True
    )
    assert booked.meetings[0].short_notice_consented
    # Mon 8 Jun needs notice by Fri 29 May (1 Jun is only the 5th working day before).
    monday = datetime.combine(date(2026, 6, 8), time(10), tzinfo=LONDON).isoformat()
    with pytest.raises(tr.InvalidCommand, match="needs notice by 2026-05-29"):
        apply(referral, "book_meeting", mediator_id="m1", starts_at=monday)
    # Tue 9 Jun: the 6th working day before is Mon 1 Jun, today: allowed.
    on_time = datetime.combine(date(2026, 6, 9), time(10), tzinfo=LONDON).isoformat()
    assert (
        apply(referral, "book_meeting", mediator_id="m1", starts_at=on_time).status
        is S.MEETING_BOOKED
    )


def test_booking_after_the_30_day_date_needs_acknowledgement() -> None:
    referral = reach(M, S.ARRANGING_MEETING)  # DL-03: 1 Jul 2026
    late = datetime.combine(date(2026, 7, 2), time(10), tzinfo=LONDON).isoformat()
    with pytest.raises(tr.InvalidCommand, match="after the 30-day date"):
        apply(referral, "book_meeting", mediator_id="m1", starts_at=late)
    booked = apply(
        referral, "book_meeting", mediator_id="m1", starts_at=late, after_deadline_acknowledged=True
    )
    assert booked.status is S.MEETING_BOOKED


def test_partial_agreement_issues_certificate_and_keeps_open_issues() -> None:
    referral = reach(M, S.MEETING_BOOKED)
    referral = apply(
        referral,
        "record_meeting",
        outcome="partial_agreement",
        settled_issues=["Section F speech therapy"],
        open_issues=["Section B description of needs"],
        agreed_actions=ACTIONS,
    )
    assert referral.status is S.AGREEMENT_AWAITING_SIGNATURE
    assert referral.certificates[0].kind is CertificateKind.AFTER_MEDIATION
    assert referral.agreement is not None
    assert referral.agreement.open_issues == ("Section B description of needs",)


def test_agreement_needs_every_party_signature() -> None:
    referral = reach(M, S.AGREEMENT_AWAITING_SIGNATURE)
    with pytest.raises(tr.InvalidCommand, match="missing \\['la'\\]"):
        apply(referral, "sign_agreement", signatories=["family"])


def test_dr_never_issues_a_certificate() -> None:
    referral = reach(D, S.MEETING_BOOKED)
    closed = apply(referral, "record_meeting", outcome="no_agreement")
    assert closed.certificates == ()
    assert not closed.certificate_required
    with pytest.raises(tr.IllegalTransition):
        tr.check(
            reach(D, S.ARRANGING_MEETING),
            COMMAND.validate_python({"command": "decline_mediation"}),
            TODAY,
            CAL,
        )


def test_dr_appealable_decision_is_pointed_to_mediation() -> None:
    body = dr_body(appealable_decision="refusal_to_assess")
    with pytest.raises(tr.InvalidCommand, match="belongs to Mediation"):
        intake.open_referral(
            "r-5",
            CREATE.validate_python(body),
            received_on=TODAY,
            created_at=datetime(2026, 6, 1, tzinfo=UTC),
            ctx=ctx(),
        )


def test_cancelled_by_must_be_a_party_or_role_never_a_name() -> None:
    referral = reach(M, S.MEETING_BOOKED)
    with pytest.raises(tr.InvalidCommand, match="never a person's name"):
        apply(referral, "cancel_meeting", cancelled_by="JaneSmith", reason="Ill")
    assert (
        apply(referral, "cancel_meeting", cancelled_by="la", reason="Ill").status
        is S.ARRANGING_MEETING
    )


def test_meeting_cannot_be_recorded_before_its_booked_date() -> None:
    referral = reach(M, S.ARRANGING_MEETING)
    later = datetime.combine(date(2026, 6, 15), time(10), tzinfo=LONDON).isoformat()
    booked = apply(referral, "book_meeting", mediator_id="m1", starts_at=later)
    with pytest.raises(tr.InvalidCommand, match="before the booked date 2026-06-15"):
        apply(booked, "record_meeting", outcome="no_agreement")


def effects_of(referral: Referral, name: str, **fields: Any) -> tuple[tr.Effect, ...]:
    command = COMMAND.validate_python({"command": name, **fields})
    return tr.decide(referral, command, ctx(), mediator=MEDIATOR, venue=REMOTE).effects


def test_certificate_goes_to_the_family_and_the_council_when_the_domain_issues_it() -> None:
    (dispatch,) = effects_of(reach(M, S.AWAITING_FAMILY_DECISION), "decline_mediation")
    assert isinstance(dispatch, tr.DispatchCertificate)
    assert dispatch.recipients == ("family", "la")
    assert dispatch.certificate.number.startswith("MC-")


def test_invitation_goes_to_family_attendees_mediator_and_supporter_once_when_booked() -> None:
    book = {**BOOK, "attendees": ["la", "senco", "la"]}
    (dispatch,) = effects_of(reach(M, S.ARRANGING_MEETING), "book_meeting", **book)
    assert isinstance(dispatch, tr.DispatchInvitation)
    assert dispatch.recipients == ("family", "la", "senco", "mediator", "supporter")


def test_agreement_goes_to_the_family_and_each_signatory_once_when_signed() -> None:
    referral = reach(M, S.AGREEMENT_AWAITING_SIGNATURE)
    (dispatch,) = effects_of(referral, "sign_agreement", signatories=["family", "la", "la"])
    assert isinstance(dispatch, tr.DispatchAgreement)
    assert dispatch.recipients == ("family", "la")


def test_document_numbers_have_four_groups_of_hex_when_formatted_from_random_bits() -> None:
    number = document_number(PREFIX["invitation"], "0123456789abcdef0123456789abcdef")
    assert number == "MI-0123-4567-89AB-CDEF"
    assert NUMBER_RE.match(number)
