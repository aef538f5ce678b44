"""The OpenAPI document as a contract: a committed snapshot (every change a visible diff in
review), and the properties generators depend on (``api/openapi.py``).

Regenerate the snapshot after an intended change with ``make openapi``.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from api.errors import PROBLEM_JSON
from api.examples import EXAMPLES
from api.main import create_app
from api.openapi import METHODS, render
from tests.conftest import Stack

SNAPSHOT = Path(__file__).parent / "openapi.json"


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if method in METHODS
    ]


async def test_served_openapi_matches_the_committed_snapshot_when_unchanged(stack: Stack) -> None:
    served = (await stack.http.get("/openapi.json", headers={"Authorization": ""})).json()
    live = render(served)
    committed = SNAPSHOT.read_text(encoding="utf-8")
    if live != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                live.splitlines(keepends=True),
                "tests/contract/openapi.json (committed)",
                "/openapi.json (served)",
                n=2,
            )
        )
        raise AssertionError(
            "The API's contract changed. If intended, run `make openapi` and commit "
            f"tests/contract/openapi.json.\n{diff[:20000]}"
        )


def test_component_names_are_unique_class_names_when_models_share_a_name() -> None:
    schema = create_app().openapi()
    names = list(schema["components"]["schemas"])
    leaked = [n for n in names if "__" in n or n.endswith(("-Input", "-Output")) or "_" in n]
    assert not leaked, f"module paths, input/output splits or generic names leak: {leaked}"
    assert {"VenueKind", "VenueType", "Problem", "MediatorPage"} <= set(names)
    assert schema["components"]["schemas"]["VenueType"]["enum"][0] == "community_centre"
    ids = [op["operationId"] for _m, _p, op in operations(schema)]
    assert len(ids) == len(set(ids)), "operationIds are unique"


def test_every_error_response_is_a_problem_when_the_operation_can_fail() -> None:
    schema = create_app().openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for method, path, op in operations(schema):
        responses = op["responses"]
        errors = [s for s in responses if s[0] in "45"]
        if path != "/healthz":
            assert "503" in errors, f"{method} {path}"
        if op.get("security"):
            assert {"401", "403"} <= set(errors), f"{method} {path}"
        if "{" in path:
            assert "404" in errors, f"{method} {path}"
        if "requestBody" in op:
            assert {"413", "422"} <= set(errors), f"{method} {path}"
        for status in errors:
            content = responses[status]["content"]
            assert list(content) == [PROBLEM_JSON], f"{method} {path} {status}"
            ref = content[PROBLEM_JSON]["schema"]["$ref"]
            assert ref == "#/components/schemas/Problem", f"{method} {path} {status}"


def test_unions_have_no_default_and_optional_bodies_are_plain_when_generated() -> None:
    schema = create_app().openapi()
    venue = schema["components"]["schemas"]["BookMeeting"]["properties"]["venue"]
    assert "oneOf" in venue
    assert "default" not in venue
    for method, path, op in operations(schema):
        body = op.get("requestBody")
        if body is None:
            continue
        body_schema = body["content"]["application/json"]["schema"]
        assert "anyOf" not in body_schema or all(
            o != {"type": "null"} for o in body_schema["anyOf"]
        ), f"{method} {path}: a nullable body"
    pdf = schema["paths"]["/v1/documents/{number}"]["get"]["responses"]["200"]["content"]
    assert pdf["application/pdf"]["schema"] == {"type": "string", "format": "binary"}


def test_every_request_body_has_an_example_valid_against_its_schema_when_published() -> None:
    schema = create_app().openapi()
    registry: Registry[Any] = Registry().with_resource(
        "urn:openapi", Resource.from_contents(schema, default_specification=DRAFT202012)
    )
    referral_examples = schema["paths"]["/v1/referrals"]["post"]["requestBody"]["content"]
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    first = next(iter(referral_examples["application/json"]["examples"].values()))["value"]
    block = readme.split('```json\n{\n  "route": "mediation"', 1)[1].split("```", 1)[0]
    assert json.loads('{\n  "route": "mediation"' + block) == first, "the README's example first"
    checked = 0
    for method, path, op in operations(schema):
        if "requestBody" not in op:
            continue
        media = op["requestBody"]["content"]["application/json"]
        assert media.get("examples"), f"{method} {path}: no example"
        pointer = "/".join(
            part.replace("~", "~0").replace("/", "~1")
            for part in ("paths", path, method, "requestBody", "content", "application/json")
        )
        body_schema = {"$ref": f"urn:openapi#/{pointer}/schema"}
        validator = jsonschema.Draft202012Validator(body_schema, registry=registry)
        for name, example in media["examples"].items():
            errors = [e.message for e in validator.iter_errors(example["value"])]
            assert not errors, f"{method} {path} example {name}: {errors}"
            checked += 1
    assert checked == sum(len(found) for found in EXAMPLES.values()), "every example is used"


async def test_redoc_is_served_from_local_assets_when_opened_without_a_key(stack: Stack) -> None:
    public = {"Authorization": ""}
    page = await stack.http.get("/redoc", headers=public)
    assert page.status_code == 200, page.text
    assert "/docs/assets/redoc.standalone.js" in page.text
    assert "http" not in page.text.split("<body>", 1)[1].split("spec-url", 1)[0]  # no CDN
    assert "fonts.googleapis" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    asset = await stack.http.get("/docs/assets/redoc.standalone.js", headers=public)
    assert asset.status_code == 200
    assert asset.headers["content-type"].startswith("text/javascript")
