"""Structured logging with personal data redacted: JSON in production, readable otherwise.

``configure_logging(settings)`` is called by ``worker.main()``, the API's lifespan and
``make run``. It installs one handler on the root logger (replacing the one it installed
before, leaving any other handler alone) whose :class:`PersonalDataFilter` rewrites every
record before it is formatted:

- structured fields (``extra=``) whose *name* is personal (``name``, ``email``, ``phone``,
  ``date_of_birth``, ``postal_address``…) are replaced, at any depth;
- in the message, arguments, exception text and stack: ``key=value`` / ``"key": "value"``
  pairs with a personal key, email addresses, UK-style phone numbers and postcodes.

Code should not log personal data in the first place (ids, codes and dates only); this is
the safety net for what libraries print, e.g. a validation error that echoes its input.
Libraries that log SQL parameters or URLs at DEBUG/INFO (``aiosqlite``, ``sqlalchemy``,
``httpx``) are held at WARNING.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.settings import Settings

REDACTED = "[redacted]"

PERSONAL_KEYS = frozenset(
    {
        "name",
        "full_name",
        "first_name",
        "last_name",
        "surname",
        "given_name",
        "child_name",
        "email",
        "email_address",
        "phone",
        "telephone",
        "mobile",
        "date_of_birth",
        "dob",
        "birth_date",
        "address",
        "postal_address",
        "postcode",
        "contact",
        "reasonable_adjustments",
        "relationship_to_child",
        "interpreter_language",
        "recipient_address",
        "to",
        "cc",
        "bcc",
    }
)
#: Structured fields the service logs on purpose: never redacted by name.
SAFE_KEYS = frozenset({"taskName", "threadName", "processName", "module", "funcName"})

_KEYS = "|".join(sorted((re.escape(k) for k in PERSONAL_KEYS), key=len, reverse=True))
_Q = r"""(?:\\?["'])?"""  # an optional quote, itself perhaps escaped (JSON inside a string)
_PAIR = re.compile(
    r"(?P<key>(?<![\w.])"
    + _Q
    + r"(?:"
    + _KEYS
    + r")"
    + _Q
    + r"\s*(?:=|:)\s*)"
    + r"""(?P<value>\\"(?:[^"\\]|\\[^"])*\\"|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|"""
    + r"""datetime\.date\([^)]*\)|[A-Za-z]+\([^)]*\)|[^\s,;)}\]]+)""",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PHONE = re.compile(r"(?<![\w+-])(?:\+\d{1,3}[\s-]?|0)\d[\d\s()-]{7,14}\d(?![\w-])")
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[ABD-HJLNP-UW-Z]{2}\b")


def _phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group(0))
    return REDACTED if 10 <= digits <= 15 else match.group(0)


def redact_text(text: str) -> str:
    """Personal-looking values in free text replaced by ``[redacted]``."""
    if not text:
        return text
    text = _PAIR.sub(lambda m: m.group("key") + REDACTED, text)
    text = _EMAIL.sub(REDACTED, text)
    text = _PHONE.sub(_phone, text)
    return _POSTCODE.sub(REDACTED, text)


def redact_value(value: Any, depth: int = 0) -> Any:
    """A structured value with personal keys replaced and strings scrubbed."""
    if depth > 8:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in PERSONAL_KEYS else redact_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v, depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value))


_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName", "color_message"}
)


def extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class PersonalDataFilter(logging.Filter):
    """Rewrites each record in place so that no handler after it sees personal data."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what we can
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        record.exc_info = None  # the formatter uses the redacted exc_text
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        for key, value in extras(record).items():
            if key in SAFE_KEYS:
                continue
            setattr(record, key, REDACTED if key.lower() in PERSONAL_KEYS else redact_value(value))
        setattr(record, "_redacted", True)  # noqa: B010
        return True


#: The referral the current API request or activity is about (a random id, never personal):
#: set by ``api/metrics.py`` and ``activities/log_context.py``, added to every record.
referral_context: ContextVar[str | None] = ContextVar("sendmed_referral_id", default=None)


class ReferralContextFilter(logging.Filter):
    """Adds ``referral_id`` from :data:`referral_context` to records that lack one."""

    def filter(self, record: logging.LogRecord) -> bool:
        referral_id = referral_context.get()
        if referral_id and not hasattr(record, "referral_id"):
            record.referral_id = referral_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extras(record).items():
            if not key.startswith("_"):
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = {k: v for k, v in extras(record).items() if not k.startswith("_")}
        if fields:
            text += "  " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


#: Loggers that print SQL parameters, request URLs or payload-bearing internals when chatty.
QUIET = {
    "aiosqlite": logging.WARNING,
    "sqlalchemy": logging.WARNING,
    "sqlalchemy.engine": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "aiosmtplib": logging.WARNING,
    "alembic": logging.WARNING,
    "asyncio": logging.WARNING,
}
#: uvicorn installs its own handlers; ours replace them (same format, same filter).
UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler ``configure_logging`` installed, so a second call replaces it."""


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> logging.Handler:
    """Install the redacting handler on the root logger; returns it.

    Under ``environment=test`` without an explicit ``stream`` no handler is added (pytest
    captures logs itself), but the levels and uvicorn's propagation are still set.
    """
    root = logging.getLogger()
    install = stream is not None or settings.environment != "test"
    fmt = settings.log_format or ("json" if settings.environment == "production" else "console")
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.addFilter(ReferralContextFilter())
    handler.addFilter(PersonalDataFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    if install:
        for old in [h for h in root.handlers if isinstance(h, _Handler)]:
            root.removeHandler(old)
        root.addHandler(handler)
    level: int = logging.getLevelNamesMapping()[settings.log_level]
    root.setLevel(level)
    for name, quiet in QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, level))
    for name in UVICORN:
        logger = logging.getLogger(name)
        if install and logger.handlers:  # none: uvicorn was told not to log (--no-access-log)
            logger.handlers.clear()
            logger.propagate = True
    return handler
