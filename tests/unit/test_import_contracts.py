"""The pure rooms are pure, proved by allow-list: indirect imports count.

``pyproject.toml``'s import-linter contracts forbid named packages; these tests check the
other way round, from the import graph itself, so that a new dependency or module cannot slip
past them: ``models.domain`` and ``models.messages`` reach only the standard library,
pydantic, dateutil and each other; ``workflows`` reaches only those, temporalio and itself.
"""

from __future__ import annotations

import functools
import sys
import tomllib
from pathlib import Path
from typing import Any

import grimp

ROOTS = ("models", "workflows", "api", "activities")
PURE = frozenset({"pydantic", "pydantic_core", "dateutil"})
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@functools.cache
def graph() -> Any:
    return grimp.build_graph(*ROOTS, include_external_packages=True)


def reached(*sources: str) -> set[str]:
    """Every module the ``sources`` (packages or modules) import, directly or not."""
    found: set[str] = set()
    for source in sources:
        found |= graph().find_upstream_modules(source, as_package=True)
    return found


def third_party(modules: set[str]) -> set[str]:
    tops = {m.split(".")[0] for m in modules}
    return {t for t in tops if t not in ROOTS and t not in sys.stdlib_module_names}


def first_party(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in ROOTS}


def within(module: str, *rooms: str) -> bool:
    return any(module == room or module.startswith(f"{room}.") for room in rooms)


def contracts() -> list[dict[str, Any]]:
    config = tomllib.loads(PYPROJECT.read_text())
    found: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return found


def test_domain_and_messages_reach_only_stdlib_pydantic_dateutil_when_indirect_imports_count() -> (
    None
):
    upstream = reached("models.domain", "models.messages")
    assert third_party(upstream) <= PURE
    outside = {
        m for m in first_party(upstream) if not within(m, "models.domain", "models.messages")
    }
    assert outside <= {"models"}, sorted(outside)


def test_workflows_reach_only_temporalio_and_the_pure_models_when_indirect_imports_count() -> None:
    upstream = reached("workflows")
    assert third_party(upstream) <= PURE | {"temporalio"}, sorted(third_party(upstream))
    outside = {
        m
        for m in first_party(upstream)
        if not within(m, "workflows", "models.domain", "models.messages")
    }
    assert outside <= {"models"}, sorted(outside)


def test_contracts_forbid_every_other_dependency_when_a_new_one_is_imported() -> None:
    imported = third_party(set(graph().modules))
    strict = {
        c["name"]: set(c["forbidden_modules"]) for c in contracts() if c["type"] == "forbidden"
    }
    assert not any(c.get("allow_indirect_imports") for c in contracts())
    pure_contract = next(f for n, f in strict.items() if n.startswith("models.domain"))
    workflow_contract = next(f for n, f in strict.items() if n.startswith("workflows"))
    assert imported - PURE - pure_contract == set()
    assert imported - PURE - {"temporalio"} - workflow_contract == set()


def test_codec_knows_nothing_of_settings_when_the_settings_build_its_keyring() -> None:
    """One way only: ``Settings.codec_keyring()`` uses the codec; the codec never imports the
    settings (the production-key rule is written once, in the settings)."""
    assert graph().find_shortest_chain("models.adapters.codec", "models.settings") is None
    assert graph().find_shortest_chain("models.settings", "models.adapters.codec") is not None


def test_only_the_dependencies_and_auth_read_request_state_when_routes_take_what_they_need() -> (
    None
):
    api = PYPROJECT.parent / "api"
    readers = sorted(
        str(path.relative_to(api))
        for path in api.rglob("*.py")
        if "request.state" in path.read_text() and path.name not in ("deps.py", "auth.py")
    )
    assert readers == []


def test_every_route_module_is_in_the_independence_contract_when_one_is_added() -> None:
    routes = set(graph().find_children("api.routes"))
    independent = next(c for c in contracts() if c["type"] == "independence")
    assert set(independent["modules"]) == routes
