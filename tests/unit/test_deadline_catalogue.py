"""One catalogue of deadlines (``models/domain/deadlines.py``): each rule id and deadline name
is written there once, and everything else asks it."""

from __future__ import annotations

import ast
import re
from collections import Counter
from datetime import date
from pathlib import Path

from api.routes.registries.councils import ProviderCreate
from models.adapters.bank_holidays import england_and_wales_calendar
from models.domain import deadlines as dl
from models.domain import transitions as tr
from models.domain.timescales import TimescalesRequest, compute_timescales
from models.store.tables import ProviderRow
from tests.factories import mediation_body, opened_referral

ROOT = Path(__file__).resolve().parents[2]
SOURCE = [
    *(
        p
        for d in ("api", "activities", "models", "workflows", "bench")
        for p in (ROOT / d).rglob("*.py")
    ),
    ROOT / "worker.py",
]
CATALOGUE = ROOT / "models" / "domain" / "deadlines.py"
#: ``appeal_deadline`` is also the name of a field of the referral, its certificates, the read
#: model and the API (the same day, by design): those uses are fields, not deadline lookups.
FIELD_NAMES = {dl.APPEAL_BY}
CAL = england_and_wales_calendar(2025, 2028)


def source_files() -> list[Path]:
    return [p for p in SOURCE if "migrations" not in p.parts and p != CATALOGUE]


def test_no_rule_id_or_deadline_name_is_written_outside_the_catalogue_when_source_is_scanned() -> (
    None
):
    rule_ids = {spec.rule for spec in dl.DEADLINES}
    names = {spec.name for spec in dl.DEADLINES} - FIELD_NAMES
    found = []
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in rule_ids | names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert found == []


def test_grep_for_a_quoted_rule_id_lands_on_its_catalogue_line_when_someone_looks_it_up() -> None:
    quoted = re.compile(r'"(DL-\d\d)"')
    hits: Counter[str] = Counter()
    for path in [*source_files(), CATALOGUE]:
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            for rule in quoted.findall(line):
                hits[rule] += 1
                assert path == CATALOGUE, f"{path.relative_to(ROOT)}:{n} {line.strip()}"
                spec = next(s for s in dl.DEADLINES if s.rule == rule and s.description in line)
                assert spec.due.__name__ in line
                assert spec.set_by in line
    assert hits == Counter(spec.rule for spec in dl.DEADLINES if spec.rule.startswith("DL-"))


def test_catalogue_rule_ids_follow_the_rules_table_when_specs_are_declared() -> None:
    table = {rule.rule_id for rule in dl.DeadlineRule} | {dl.DR_CONSENT_RULE}
    assert {spec.rule for spec in dl.DEADLINES} <= table
    pairs = [(spec.rule, spec.description) for spec in dl.DEADLINES]
    assert len(pairs) == len(set(pairs))


def test_provider_action_level_has_one_source_when_calculator_workflow_and_registry_use_it() -> (
    None
):
    level = dl.REFERRAL_ACTION_WORKING_DAYS
    assert tr.Policy().referral_action_working_days == level
    assert ProviderRow.model_fields["referral_action_working_days"].default == level
    assert ProviderCreate.model_fields["referral_action_working_days"].default == level
    received = date(2026, 11, 20)
    body = mediation_body(received_on=received.isoformat())
    opened = opened_referral(body, today=received)
    calculated = compute_timescales(TimescalesRequest(referral_received_date=received), CAL)
    assert opened.deadlines[dl.REFERRAL_ACTIONED_BY].due_on == calculated.referral_actioned_by
    slower = opened_referral(body, today=received, policy=tr.Policy(referral_action_working_days=7))
    assert slower.deadlines[dl.REFERRAL_ACTIONED_BY].due_on == dl.referral_actioned_by(
        received, CAL, 7
    )
