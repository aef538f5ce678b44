"""A working example for every request body the API takes, shown in ``/docs`` ("Try it out")
and published in the OpenAPI document (``api/openapi.py``).

They fit together: the mediator and venue created by the registry examples are the ones the
``book-meeting`` example books, the Disagreement Resolution example's parties (``school``,
``la``) are the ones ``party-response`` answers for, and the referral example is the
README's. ``tests/contract`` checks each against its schema.
"""

from __future__ import annotations

from typing import Any, Final

Example = dict[str, Any]

#: The README's example referral: the first example of ``POST /v1/referrals``.
MEDIATION_REFERRAL: Final[Example] = {
    "route": "mediation",
    "local_authority": "E10000015",
    "referrer": {"role": "parent", "contact": {"name": "A Parent", "email": "parent@example.org"}},
    "child": {"name": "A Child", "date_of_birth": "2015-03-09"},
    "decision": {"type": "refusal_to_assess", "letter_date": "2026-11-02"},
    "local_authority_contact": {
        "kind": "local_authority",
        "organisation": "Hertfordshire County Council",
        "contact": {"name": "SEN Officer", "email": "sen@example.gov.uk"},
    },
}

DR_REFERRAL: Final[Example] = {
    "route": "disagreement_resolution",
    "local_authority": "E10000015",
    "external_reference": "HCC-SEN-2026-0042",
    "referrer": {"role": "parent", "contact": {"name": "A Parent", "email": "parent@example.org"}},
    "child": {"name": "A Child", "date_of_birth": "2015-03-09"},
    "disagreement_type": "sen_provision",
    "issues": ["Support in class is not being provided as agreed"],
    "parties": [
        {
            "id": "school",
            "kind": "school",
            "organisation": "Oakfield Primary School",
            "role": "Headteacher",
            "contact": {"name": "A Headteacher", "email": "head@school.example.org"},
        },
        {
            "id": "la",
            "kind": "local_authority",
            "organisation": "Hertfordshire County Council",
            "contact": {"name": "SEN Officer", "email": "sen@example.gov.uk"},
        },
    ],
}

MEDIATOR_ID: Final = "med-morgan"
VENUE_ID: Final = "venue-hatfield"

_COMMAND = "/v1/referrals/{referral_id}/"

#: (method, path template) -> {example name: (summary, value)}; the first is the default.
EXAMPLES: Final[dict[tuple[str, str], dict[str, tuple[str, Example]]]] = {
    ("post", "/v1/referrals"): {
        "mediation": ("A Mediation referral (the README's)", MEDIATION_REFERRAL),
        "disagreement_resolution": ("A Disagreement Resolution referral", DR_REFERRAL),
    },
    ("post", _COMMAND + "action"): {"today": ("Actioned today", {})},
    ("post", _COMMAND + "information-session"): {"today": ("Held today", {})},
    ("post", _COMMAND + "decline-mediation"): {"today": ("Declined today", {})},
    ("post", _COMMAND + "request-mediation"): {
        "today": ("Requested today", {"issues": ["The council refused an EHC needs assessment"]})
    },
    ("post", _COMMAND + "la-unable-to-arrange"): {"today": ("Told today", {})},
    ("post", _COMMAND + "party-response"): {
        "accepted": ("The school takes part", {"party_id": "school", "answer": "accepted"}),
        "declined": (
            "The council declines",
            {"party_id": "la", "answer": "declined", "reason": "A review meeting is booked"},
        ),
    },
    ("post", _COMMAND + "book-meeting"): {
        "remote": (
            "A video meeting",
            {
                "mediator_id": MEDIATOR_ID,
                "starts_at": "2027-01-12T10:00:00+00:00",
                "duration_minutes": 150,
                "venue": {"kind": "remote", "video_link": "https://meet.example.org/send-42"},
                "after_deadline_acknowledged": True,
            },
        ),
        "in_person": (
            "At a neutral venue",
            {
                "mediator_id": MEDIATOR_ID,
                "starts_at": "2027-01-12T10:00:00+00:00",
                "venue": {"kind": "in_person", "venue_id": VENUE_ID},
                "after_deadline_acknowledged": True,
            },
        ),
    },
    ("post", _COMMAND + "cancel-meeting"): {
        "family": ("The family cancels", {"cancelled_by": "family", "reason": "Illness"})
    },
    ("post", _COMMAND + "record-meeting"): {
        "agreement": (
            "Agreement with one action",
            {
                "outcome": "agreement",
                "settled_issues": ["The council will carry out an EHC needs assessment"],
                "agreed_actions": [
                    {
                        "description": "Tell the family the assessment will go ahead",
                        "owner": "la",
                        "kind": "assess_notify",
                    }
                ],
            },
        ),
        "no_agreement": (
            "No agreement (a certificate follows)",
            {"outcome": "no_agreement", "open_issues": ["Whether to assess"]},
        ),
    },
    ("post", _COMMAND + "sign-agreement"): {
        "signed": ("Signed by the family and the council", {"signatories": ["family", "la"]})
    },
    ("post", _COMMAND + "complete-action"): {"done": ("Done today", {"action_id": "action-1"})},
    ("post", _COMMAND + "withdraw"): {
        "withdrawn": ("The family withdraws", {"reason": "The matter was resolved"})
    },
    ("post", _COMMAND + "meeting-reply"): {
        "attending": (
            "The council will attend",
            {"meeting_id": "meeting-1", "invitee": "la", "answer": "attending"},
        ),
        "rearrange": (
            "The family asks to rearrange",
            {
                "meeting_id": "meeting-1",
                "invitee": "family",
                "answer": "rearrange",
                "reason": "We are away that week",
            },
        ),
    },
    ("post", "/v1/mediators"): {
        "mediator": (
            "A SEND-trained mediator",
            {
                "id": MEDIATOR_ID,
                "name": "Morgan Mediator",
                "send_trained": True,
                "email": "morgan@mediation.example.org",
                "accreditation": "Civil Mediation Council registered",
            },
        )
    },
    ("patch", "/v1/mediators/{mediator_id}"): {
        "accreditation": ("Change the accreditation", {"accreditation": "CMC registered"})
    },
    ("post", "/v1/venues"): {
        "venue": (
            "A neutral venue",
            {
                "id": VENUE_ID,
                "name": "Hatfield Community Centre",
                "address": "1 Example Road, Hatfield",
                "kind": "community_centre",
                "accessibility": "Step-free access, hearing loop",
            },
        )
    },
    ("patch", "/v1/venues/{venue_id}"): {
        "access": ("Change the access notes", {"accessibility": "Step-free, quiet room"})
    },
    ("post", "/v1/providers"): {
        "provider": (
            "A mediation provider",
            {
                "id": "north-mediation",
                "name": "North Mediation Service",
                "phone": "01234 567890",
                "email": "mediation@north.example.org",
                "office_hours": "Monday to Friday, 9am to 5pm",
                "referral_action_working_days": 5,
            },
        )
    },
    ("patch", "/v1/providers/{provider_id}"): {
        "hours": ("Change the office hours", {"office_hours": "Monday to Thursday, 9am to 4pm"})
    },
    ("post", "/v1/local-authorities"): {
        "council": (
            "A council and its provider",
            {
                "code": "E10000016",
                "name": "Kent County Council",
                "icbs": ["NHS Kent and Medway Integrated Care Board"],
                "provider_id": "north-mediation",
            },
        )
    },
    ("patch", "/v1/local-authorities/{code}"): {
        "inactive": ("Stop new referrals", {"active": False})
    },
    ("post", "/v1/timescales"): {
        "appeal": (
            "Appeal deadline from a decision and a certificate",
            {"decision_letter_date": "2026-11-02", "certificate_issue_date": "2026-12-01"},
        )
    },
    ("post", "/v1/webhook-subscriptions"): {
        "council": (
            "A council's case system",
            {
                "url": "https://crm.example.gov.uk/hooks/send-referrals",
                "event_types": ["certificate.issued", "deadline.breached"],
                "local_authority": "E10000015",
                "description": "Hertfordshire SEN case system",
            },
        )
    },
    ("post", "/codec/encode"): {
        "payload": (
            "One JSON payload",
            {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "e30="}]},
        )
    },
    ("post", "/codec/decode"): {"empty": ("No payloads", {"payloads": []})},
}
