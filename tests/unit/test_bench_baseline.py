"""The --baseline comparison's arithmetic (bench/baseline.py): run order, medians, ratios."""

from __future__ import annotations

import math

from bench.baseline import (
    RoundFigures,
    alternation,
    median,
    metrics_in,
    paired_ratios,
    side_values,
    table,
)


def test_rounds_alternate_old_first() -> None:
    assert alternation(3) == [
        ("old", 1),
        ("new", 1),
        ("old", 2),
        ("new", 2),
        ("old", 3),
        ("new", 3),
    ]


FIGURES = [
    RoundFigures("old", 1, {"referrals/s": 3.0, "CPU ms": 600.0}),
    RoundFigures("new", 1, {"referrals/s": 6.0, "CPU ms": 300.0, "only new": 1.0}),
    RoundFigures("old", 2, {"referrals/s": 3.2, "CPU ms": 580.0}),
    RoundFigures("new", 2, {"referrals/s": 6.6, "CPU ms": 280.0, "only new": 3.0}),
    RoundFigures("old", 3, {"referrals/s": 2.0, "CPU ms": 590.0}),
    RoundFigures("new", 3, {"referrals/s": 7.0, "CPU ms": 310.0, "only new": 2.0}),
]


def test_medians_per_side() -> None:
    assert median(side_values(FIGURES, "old", "referrals/s")) == 3.0
    assert median(side_values(FIGURES, "new", "referrals/s")) == 6.6
    assert median(side_values(FIGURES, "new", "CPU ms")) == 300.0
    assert math.isnan(median(side_values(FIGURES, "old", "only new")))


def test_paired_ratios_are_new_over_old_by_round() -> None:
    assert paired_ratios(FIGURES, "referrals/s") == [2.0, 6.6 / 3.2, 3.5]
    assert paired_ratios(FIGURES, "only new") == []


def test_table_has_every_round_the_medians_and_the_ratio() -> None:
    assert metrics_in(FIGURES) == ["referrals/s", "CPU ms", "only new"]
    head, rule, rate, cpu, only_new = table(FIGURES, {"referrals/s"})
    assert head.startswith("| metric | old 1 | new 1 | old 2 | new 2 | old 3 | new 3 |")
    assert rule.count("|") == head.count("|")
    cells = [c.strip() for c in rate.strip("|").split("|")]
    assert cells == [
        "referrals/s",
        "3.00",
        "6.00",
        "3.20",
        "6.60",
        "2.00",
        "7.00",
        "3.00",
        "6.60",
        "**2.200**",
        "2.062",
        "higher",
    ]
    cpu_cells = [c.strip() for c in cpu.strip("|").split("|")]
    # paired: 300/600, 280/580, 310/590 -> median 0.500
    assert cpu_cells[7:] == ["590", "300", f"**{300 / 590:.3f}**", "0.500", "lower"]
    assert "| – |" in only_new
    assert only_new.endswith("| – | 2.00 | **–** | – | lower |")
