"""The OpenAPI document, finished in one place so that standard generators build a working
client from it (``tests/contract`` generates one with openapi-python-client and drives the
service through it).

FastAPI writes the paths and models; this module then, once per schema:

- declares one ``Problem`` component (RFC 9457 with ``errors``) as
  ``application/problem+json`` on every error status each operation can answer: 401/403 where
  a key is needed, 404 where the path names something, 409 for POSTs (a command not legal now,
  a duplicate, or a repeat of an ``Idempotency-Key`` still running), 413 where there is a
  body, 422 where there is input, 503 wherever Temporal or the database is called — instead
  of FastAPI's ``HTTPValidationError``, which the server never sends;
- drops the default of a discriminated union (a default beside ``oneOf`` breaks generators;
  the server still applies it) and writes it into the description;
- turns an optional command body (``anyOf [Model, null]``) into an optional ``Model`` body:
  send ``{}`` or nothing;
- gives every binary response (the PDF, the calendar file) a binary schema;
- puts a working example on every request body (``api/examples.py``);
- documents that a referral id may also be written ``referral-<uuid>`` (the Temporal Web UI's
  workflow id; ``api/ids.py``).

Component names are the models' class names (unique: ``tests/contract`` fails on a clash),
with no ``-Input``/``-Output`` split (``separate_input_output_schemas=False`` in
``api/main.py``).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Final

from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.errors import PROBLEM_JSON
from api.examples import EXAMPLES

REF: Final = "#/components/schemas/"
OCTET_STREAM: Final = "application/octet-stream"
METHODS: Final = frozenset({"get", "put", "post", "patch", "delete"})

PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details. `errors` names each invalid field (422); a 409 "
    "for a command says `current_status` and `allowed_commands`. Other members may appear.",
    "properties": {
        "type": {
            "type": "string",
            "description": "A URI naming the kind of problem, or about:blank.",
            "examples": ["https://send-referrals.dev/problems/validation"],
        },
        "title": {"type": "string", "examples": ["Invalid request"]},
        "status": {"type": "integer", "examples": [422]},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request's path."},
        "errors": {
            "type": "array",
            "items": {"$ref": REF + "ProblemFieldError"},
            "description": "Each invalid field (422).",
        },
        "current_status": {
            "type": "string",
            "description": "409 for a command: the referral's status now.",
        },
        "allowed_commands": {
            "type": "array",
            "items": {"type": "string"},
            "description": "409 for a command: the commands legal now.",
        },
    },
    "required": ["type", "title", "status"],
    "additionalProperties": True,
}

FIELD_ERROR_SCHEMA: Final[dict[str, Any]] = {
    "title": "ProblemFieldError",
    "type": "object",
    "properties": {
        "field": {
            "type": "string",
            "description": "Where: `body.decision.letter_date`, `query.limit`, `header.…`.",
        },
        "message": {"type": "string"},
        "type": {"type": ["string", "null"], "description": "A machine-readable error code."},
    },
    "required": ["field", "message"],
    "additionalProperties": True,
}

DESCRIPTIONS: Final[dict[str, str]] = {
    "401": "No valid API key (missing, malformed, unknown or revoked).",
    "403": "The key lacks the scope, or may not act for this council.",
    "404": "Nothing has this id (or the key's councils do not cover it).",
    "409": "Conflict: a command not legal in the referral's current state (with "
    "`current_status` and `allowed_commands`), a duplicate, or a repeat of an "
    "`Idempotency-Key` whose first request is still running.",
    "413": "The request body is over the size limit.",
    "422": "Invalid input: `errors` names each field.",
    "503": "Temporal or the database is unavailable for now: retry (see `Retry-After`).",
}

#: Added to the API's description: the answers no single operation declares.
GENERAL_ERRORS: Final = """
**Errors.** Every error is `application/problem+json` (the `Problem` schema), declared on
each operation for the statuses it can answer. Besides those, any path answers **405**
(with `Allow`) to a method it does not take, and **500** to a fault of the service (logged,
never with details). A body that is not JSON is a **422** naming `body`; the service never
answers 400.
"""

REFERRAL_ID_PATTERN: Final = r"^(referral-)?[0-9a-f-]{36}$"


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF + "Problem"}}},
    }


def _statuses(path: str, method: str, operation: dict[str, Any]) -> set[str]:
    params = operation.get("parameters", [])
    found: set[str] = set()
    if operation.get("security"):  # set by api/auth.py for every non-public route
        found |= {"401", "403"}
    if any(p.get("in") == "path" for p in params):
        found.add("404")
    if method == "post" and any(p.get("name") == "Idempotency-Key" for p in params):
        found.add("409")
    if "requestBody" in operation:
        found |= {"413", "422"}
    if params:
        found.add("422")
    if path != "/healthz":
        found.add("503")
    return found


def _error_responses(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    declared_errors = {s for s in responses if s[0] in "45"}
    for status in sorted(_statuses(path, method, operation) | declared_errors):
        declared = responses.get(status, {}).get("description")
        generic = status in ("401", "403", "422") or declared in (None, "Validation Error")
        text = DESCRIPTIONS.get(status, "Error.") if generic else declared
        responses[status] = _problem(text or DESCRIPTIONS.get(status, "Error."))


def _binary_responses(operation: dict[str, Any]) -> None:
    """Binary bodies get a binary schema; a PDF may also be asked for as
    ``application/octet-stream`` (``Accept``), which every generator can read."""
    for response in operation.get("responses", {}).values():
        content = response.get("content", {})
        if len(content) > 1 and not content.get("application/json", {"schema": 1}).get("schema"):
            del content["application/json"]
        for media_type, body in list(content.items()):
            if not body.get("schema") and media_type != "application/json":
                body["schema"] = {"type": "string", "format": "binary"}
            if media_type == "application/pdf":
                content.setdefault(OCTET_STREAM, {"schema": {"type": "string", "format": "binary"}})


_GENERIC = re.compile(r"^Page_(?P<item>\w+?)(?:Read)?_$")


def _human_names(schema: dict[str, Any]) -> None:
    """``Page_MediatorRead_`` (a generic model's name) → ``MediatorPage``, refs included."""
    schemas: dict[str, Any] = schema["components"]["schemas"]
    renames = {name: f"{found['item']}Page" for name in schemas if (found := _GENERIC.match(name))}
    if not renames:
        return
    for old, new in renames.items():
        if new in schemas:
            raise ValueError(f"component name clash: {old} -> {new}")
        schemas[new] = schemas.pop(old)
        schemas[new]["title"] = new
    text = json.dumps(schema)
    for old, new in renames.items():
        text = text.replace(f'"{REF}{old}"', f'"{REF}{new}"')
    schema.clear()
    schema.update(json.loads(text))


def _optional_body(operation: dict[str, Any]) -> None:
    body = operation.get("requestBody")
    if body is None:
        return
    media = body.get("content", {}).get("application/json", {})
    schema = media.get("schema", {})
    options = schema.get("anyOf", [])
    refs = [o for o in options if "$ref" in o]
    if len(options) == 2 and len(refs) == 1 and {"type": "null"} in options:
        media["schema"] = refs[0]
        body["required"] = False
        body["description"] = "Optional: send `{}`, or no body, for the defaults."


def _examples(path: str, method: str, operation: dict[str, Any]) -> None:
    body = operation.get("requestBody")
    if body is None:
        return
    found = EXAMPLES.get((method, path))
    if found is None:  # tests/contract fails until api/examples.py has one
        return
    media = body["content"]["application/json"]
    media["examples"] = {
        name: {"summary": summary, "value": copy.deepcopy(value)}
        for name, (summary, value) in found.items()
    }


def _referral_ids(operation: dict[str, Any]) -> None:
    for param in operation.get("parameters", []):
        if param.get("in") == "path" and param.get("name") == "referral_id":
            param["schema"] = {**param.get("schema", {}), "pattern": REFERRAL_ID_PATTERN}
            param["description"] = (
                "The referral's id, or its Temporal workflow id (`referral-<id>`)."
            )


def _union_defaults(schemas: dict[str, Any]) -> None:
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            if ("oneOf" in prop or "discriminator" in prop) and "default" in prop:
                default = prop.pop("default")
                note = f"Default: `{json.dumps(default)}`."
                prop["description"] = f"{prop.get('description', '')} {note}".strip()


def finish(schema: dict[str, Any]) -> dict[str, Any]:
    """Post-process FastAPI's document in place (see the module docstring)."""
    components = schema.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = copy.deepcopy(PROBLEM_SCHEMA)
    schemas["ProblemFieldError"] = copy.deepcopy(FIELD_ERROR_SCHEMA)
    _union_defaults(schemas)
    _human_names(schema)
    info = schema.setdefault("info", {})
    info["description"] = info.get("description", "").rstrip() + "\n" + GENERAL_ERRORS
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            _optional_body(operation)
            _examples(path, method, operation)
            _binary_responses(operation)
            _error_responses(path, method, operation)
            _referral_ids(operation)
    return schema


def operation_id(route: APIRoute) -> str:
    """The route's function name (``create_referral``, ``command_book_meeting``): short,
    stable method names in generated clients. ``tests/contract`` checks they are unique."""
    return route.name


def install(app: FastAPI) -> None:
    """Finish the document once, after ``api/auth.py`` has documented security."""
    original = app.openapi
    finished: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = original()
        if not finished or finished[0] is not schema:
            finish(schema)
            finished[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def render(schema: dict[str, Any]) -> str:
    """The document as committed in ``tests/contract/openapi.json``."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # make openapi: the document, without starting anything
    import sys

    from api.main import create_app

    sys.stdout.write(render(create_app().openapi()))
