"""Logs carry no personal data: redacted structured logs, and an end-to-end run that logs none."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from models.adapters.logging import (
    REDACTED,
    ConsoleFormatter,
    JsonFormatter,
    PersonalDataFilter,
    configure_logging,
    redact_text,
)
from models.domain.referral import ReferralCreate
from tests.conftest import Stack, make_settings
from tests.e2e.helpers import meeting_day
from tests.factories import CHILD_DOB, CHILD_NAME, mediation_body

PERSONAL = (
    CHILD_NAME,
    "Testchild",
    CHILD_DOB.isoformat(),
    "Grace Testparent",
    "grace.parent@example.org",
    "Sam Officer",
    "sam.officer@example.gov.uk",
    "Pat Senco",
    "senco@oakfield.example.sch.uk",
    "Lin Friend",
    "Step-free access",
    "07700 900123",
)


def record(msg: str, *args: Any, exc: BaseException | None = None, **extra: Any) -> Any:
    rec = logging.LogRecord("t", logging.WARNING, __file__, 1, msg, args, None)
    if exc is not None:
        rec.exc_info = (type(exc), exc, exc.__traceback__)
    rec.__dict__.update(extra)
    return rec


def found(text: str) -> list[str]:
    return [p for p in PERSONAL if p in text]


def test_redaction_of_messages_arguments_extras_and_exceptions() -> None:
    body = mediation_body()
    body["referrer"]["contact"]["phone"] = "07700 900123"
    body["child"]["date_of_birth"] = "not a date"
    try:
        TypeAdapter(ReferralCreate).validate_python(body)
    except ValidationError as exc:
        error = exc
    rec = record(
        "creating %s for %s (call %s)",
        body["child"],
        "grace.parent@example.org",
        "07700 900123",
        exc=error,
        referral_id="abc",
        contact={"name": "Sam Officer", "email": "sam.officer@example.gov.uk"},
        payload={"child": {"name": CHILD_NAME, "date_of_birth": CHILD_DOB.isoformat()}},
    )
    assert PersonalDataFilter().filter(rec)
    line = JsonFormatter().format(rec)
    entry = json.loads(line)
    assert found(line) == []
    assert entry["referral_id"] == "abc"
    assert entry["contact"] == REDACTED
    assert entry["payload"]["child"]["name"] == REDACTED
    assert "ValidationError" in entry["exception"]
    assert found(ConsoleFormatter().format(rec)) == []


def test_what_is_not_personal_stays_readable() -> None:
    text = (
        "referral 5b0f6c53-8f57-4d0e-9c55-3e1f0a0f6a11 (E10000015) deadline DL-03 due "
        "2026-12-27 at 2026-11-28 09:00:00; activity record_referral attempt 2"
    )
    assert redact_text(text) == text


def test_configure_logging_is_json_in_production_and_replaces_itself(
    restore_logging: None,
) -> None:
    buffer = io.StringIO()
    settings = make_settings(log_format="json")
    first = configure_logging(settings, stream=buffer)
    second = configure_logging(settings, stream=buffer)
    ours = [h for h in logging.getLogger().handlers if h in (first, second)]
    assert ours == [second]
    logging.getLogger("sendmed.test").warning("parent %s", "grace.parent@example.org")
    entry = json.loads(buffer.getvalue().strip().splitlines()[-1])
    assert entry["message"] == f"parent {REDACTED}"
    assert entry["level"] == "WARNING"
    assert logging.getLogger("aiosqlite").level == logging.WARNING  # logs SQL parameters


async def test_an_end_to_end_run_logs_no_personal_data(
    stack: Stack,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    """Everything logged while a referral runs, at DEBUG: API, worker, SDK, dev server."""
    buffer = io.StringIO()
    configure_logging(stack.settings.model_copy(update={"log_level": "DEBUG"}), stream=buffer)
    # The stack's stand-in SMTP server (aiosmtpd, "mail.log") is the test's, not the
    # service's: in production mail leaves for a real server. It logs every conversation.
    caplog.set_level(logging.WARNING, logger="mail.log")
    caplog.set_level(logging.DEBUG)  # the root logger and the capture: everything else
    body = mediation_body()
    body["referrer"]["contact"]["phone"] = "07700 900123"
    http = stack.http

    # Its own mediator: a booking must not take a slot the other e2e tests count on.
    mediator = await http.post("/v1/mediators", json={"name": "Log Test", "send_trained": True})
    assert mediator.status_code == 201, mediator.text
    created = await http.post("/v1/referrals", json=body)
    assert created.status_code == 201, created.text
    referral_id = created.json()["id"]
    invalid = dict(body, child={"name": CHILD_NAME, "date_of_birth": "09/03/2015"})
    assert (await http.post("/v1/referrals", json=invalid)).status_code == 422
    steps: list[tuple[str, dict[str, Any], int]] = [
        ("information-session", {}, 200),
        ("request-mediation", {}, 200),
        ("information-session", {}, 409),  # not legal now
        (
            "book-meeting",
            {
                "mediator_id": mediator.json()["id"],
                "starts_at": f"{meeting_day().isoformat()}T10:00:00+00:00",
                "venue": {"kind": "remote", "video_link": "https://meet.example.org/x"},
            },
            200,
        ),
        ("withdraw", {"reason": f"{CHILD_NAME} moved away"}, 200),
    ]
    for command, payload, status in steps:
        response = await http.post(f"/v1/referrals/{referral_id}/{command}", json=payload)
        assert response.status_code == status, (command, response.text)
    for path in ("", "/events", "/documents", "/export"):
        assert (await http.get(f"/v1/referrals/{referral_id}{path}")).status_code == 200
    handle = stack.temporal.get_workflow_handle(f"referral-{referral_id}")
    await handle.result()

    out, err = capfd.readouterr()
    logged = "\n".join([buffer.getvalue(), caplog.text, out, err])
    assert caplog.records, "nothing was captured: the test would prove nothing"
    lines = [line for line in logged.splitlines() if found(line)]
    assert lines == []
