"""Before and after in one run: ``--baseline REF`` on the benchmarks.

The benchmark resolves ``REF`` to a commit, checks it out in a detached ``git worktree``
(``/tmp/sendmed-baseline-<sha>``, reused if it is already there at that commit, removed at
the end unless ``--keep``), copies the built ``api/pages/static/`` into it, and then runs
``--rounds`` rounds of each side alternately, old, new, old, new …, each round on a fresh
stack (dev server, database, workers, API) so that neither side inherits the other's warm
state. The *old* side's worker and API are that worktree's own ``worker.py`` and
``api.main`` (cwd and ``PYTHONPATH`` = the worktree, the same venv python), its database is
migrated by its own migrations and its dev server gets its own search attributes; the
traffic is always this tree's driver code, so both sides get the same. Each side's processes
are checked to import their own tree's modules, not the venv's editable install of the main
checkout (``check_stack``).

The summary is one table: every round's figures in run order, the median per side, the
new/old ratio of the medians and the median of the per-pair ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import (
    ROOT,
    Stack,
    load_average,
    provenance,
    running_stack,
    say,
    tree_env,
    write_section,
)

SIDES = ("old", "new")
MAIN_STATIC = Path("/work/main/api/pages/static")  # where `make` builds it, if not here

# Run in a child of the tree (cwd and PYTHONPATH = the tree, as its worker and API run):
# where the service's packages resolve, and the search attributes the tree declares.
# The dev server's options as the tree's `make run` gives them (trees before `dev_server_flags`
# gave these four and the search attributes).
PROBE = """
import importlib.util, json, sys
from workflows import search_attributes as sa
try:
    from deploy.run_local import dev_server_flags
    flags = dev_server_flags()
except ImportError:
    flags = ["--log-level", "warn", "--sqlite-pragma", "journal_mode=wal",
             "--sqlite-pragma", "synchronous=normal", *sa.cli_flags()]
names = ("workflows", "activities", "api", "models", "worker", "workflows.search_attributes")
origins = {n: getattr(importlib.util.find_spec(n), "origin", None) for n in names}
print(json.dumps({"modules": origins, "temporal_flags": flags}))
"""


# --------------------------------------------------------------------------- source trees


@dataclass(frozen=True)
class Tree:
    """One side: a source tree at a commit, and what a child of it imports."""

    side: str  # "old" or "new"
    root: Path
    commit: str
    ref: str = ""
    dirty: bool = False  # uncommitted changes on top of ``commit`` (this tree only)
    modules: dict[str, str] = field(default_factory=dict)
    temporal_flags: tuple[str, ...] = ()

    def describe(self) -> str:
        ref = f" ({self.ref})" if self.ref else ""
        extra = " plus uncommitted changes" if self.dirty else ""
        return f"`{self.commit}`{ref}{extra}"


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def resolve(ref: str) -> str:
    try:
        return git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"--baseline {ref}: not a commit in {ROOT}") from None


def probe(tree: Tree) -> Tree:
    """Ask a child of the tree where the service's modules resolve; refuse a tree whose
    children would import another tree's code."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tree.root,
        env=tree_env(tree.root) | {"PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = json.loads(out.strip().splitlines()[-1])
    modules: dict[str, str] = {k: str(v) for k, v in found["modules"].items()}
    outside = {k: v for k, v in modules.items() if not under(Path(v), tree.root)}
    if outside:
        raise RuntimeError(f"{tree.side} tree {tree.root}: modules resolve elsewhere: {outside}")
    return Tree(
        tree.side,
        tree.root,
        tree.commit,
        tree.ref,
        tree.dirty,
        modules,
        tuple(found["temporal_flags"]),
    )


def under(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def current_tree() -> Tree:
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return probe(
        Tree("new", ROOT, git("rev-parse", "HEAD"), git("rev-parse", "--abbrev-ref", "HEAD"), dirty)
    )


@contextmanager
def baseline_tree(ref: str, keep: bool = False) -> Iterator[Tree]:
    """A detached worktree of ``ref`` with the built pages' static files; removed after."""
    commit = resolve(ref)
    path = Path(tempfile.gettempdir()) / f"sendmed-baseline-{commit[:12]}"
    reuse = False
    if path.exists():
        try:
            reuse = git("rev-parse", "HEAD", cwd=path) == commit and not git(
                "status", "--porcelain", "--untracked-files=no", cwd=path
            )
        except subprocess.CalledProcessError:
            reuse = False
        if not reuse:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT)
            shutil.rmtree(path, ignore_errors=True)
            git("worktree", "prune")
    if reuse:
        say(f"baseline {ref} = {commit[:12]}: reusing the worktree {path}")
    else:
        git("worktree", "add", "--detach", str(path), commit)
        say(f"baseline {ref} = {commit[:12]}: worktree {path}")
    static = ROOT / "api" / "pages" / "static"
    source = static if static.is_dir() else MAIN_STATIC
    if source.is_dir():
        shutil.copytree(source, path / "api" / "pages" / "static", dirs_exist_ok=True)
    else:
        say("  (no built api/pages/static to copy: the baseline's link pages have no styles)")
    try:
        yield probe(Tree("old", path, commit, ref))
    finally:
        if keep:
            say(f"kept the baseline worktree {path} (git worktree remove --force {path})")
        else:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT)


@asynccontextmanager
async def stack_of(tree: Tree | None, database_url: str, **options: Any) -> AsyncIterator[Stack]:
    """``running_stack`` of ``tree`` (its worker, API and dev-server options), checked to run
    the tree; of this tree when ``tree`` is None (a run without ``--baseline``)."""
    async with running_stack(
        database_url,
        root=tree.root if tree else None,
        temporal_flags=tree.temporal_flags if tree else None,
        **options,
    ) as stack:
        if tree is not None:
            say(check_stack(tree, stack))
        yield stack


def check_stack(tree: Tree, stack: Stack) -> str:
    """The stack's worker(s) and API really run the tree: their cwd and PYTHONPATH are the
    tree (so ``probe``'s resolution holds for them) and the worker is the tree's script."""
    checked: list[str] = []
    for name, pid in stack.pids().items():
        if not (name.startswith("worker") or name.startswith("api")):
            continue
        cwd = Path(f"/proc/{pid}/cwd").resolve()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        pythonpath = next(
            (e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"PYTHONPATH=")), ""
        )
        problems = []
        if cwd != tree.root.resolve():
            problems.append(f"cwd {cwd}")
        if Path(pythonpath).resolve() != tree.root.resolve():
            problems.append(f"PYTHONPATH {pythonpath!r}")
        if name.startswith("worker") and not under(Path(argv[1].decode()), tree.root):
            problems.append(f"script {argv[1].decode()}")
        if problems:
            raise RuntimeError(f"{tree.side} {name} (pid {pid}) is not {tree.root}: {problems}")
        checked.append(name)
    return (
        f"{tree.side}: {', '.join(checked)} run with cwd and PYTHONPATH {tree.root}, where "
        f"`workflows` resolves to {tree.modules.get('workflows')}"
    )


# --------------------------------------------------------------------------- rounds


@dataclass(frozen=True)
class RoundFigures:
    side: str
    index: int  # 1-based, per side
    values: dict[str, float]


def alternation(rounds: int) -> list[tuple[str, int]]:
    """The run order: old 1, new 1, old 2, new 2, …"""
    return [(side, i) for i in range(1, rounds + 1) for side in SIDES]


def side_values(figures: Sequence[RoundFigures], side: str, metric: str) -> list[float]:
    return [f.values[metric] for f in figures if f.side == side and metric in f.values]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def ratio(new: float, old: float) -> float:
    return new / old if old else math.nan


def paired_ratios(figures: Sequence[RoundFigures], metric: str) -> list[float]:
    """new/old of each round pair (old i, new i) where both have the metric."""
    old = {f.index: f.values.get(metric) for f in figures if f.side == "old"}
    new = {f.index: f.values.get(metric) for f in figures if f.side == "new"}
    pairs = [(new[i], old[i]) for i in sorted(old) if i in new]
    return [ratio(n, o) for n, o in pairs if n is not None and o is not None]


def metrics_in(figures: Sequence[RoundFigures]) -> list[str]:
    """Every metric any round reported, in the order first seen."""
    return list(dict.fromkeys(k for f in figures for k in f.values))


def number(value: float) -> str:
    if math.isnan(value):
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def times(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def table(figures: Sequence[RoundFigures], higher_is_better: Collection[str]) -> list[str]:
    """One row per metric: each round's figure in run order, the medians, the ratios."""
    runs = [(f.side, f.index) for f in figures]
    lines = [
        "| metric | "
        + " | ".join(f"{side} {i}" for side, i in runs)
        + " | old median | new median | **new/old** | paired new/old (median) | better |",
        "|---|" + "---:|" * (len(runs) + 4) + "---|",
    ]
    for metric in metrics_in(figures):
        old, new = (
            median(side_values(figures, "old", metric)),
            median(side_values(figures, "new", metric)),
        )
        pairs = paired_ratios(figures, metric)
        cells = [number(f.values[metric]) if metric in f.values else "–" for f in figures]
        lines.append(
            f"| {metric} | "
            + " | ".join(cells)
            + f" | {number(old)} | {number(new)} | **{times(ratio(new, old))}** | "
            f"{times(median(pairs))} | {'higher' if metric in higher_is_better else 'lower'} |"
        )
    return lines


# --------------------------------------------------------------------------- the run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also run REF (a git ref) from a worktree, rounds alternating old and new, each on "
        "a fresh stack; PERFORMANCE.md gets the before/after table",
    )
    parser.add_argument("--keep", action="store_true", help="keep the baseline worktree")


RunRound = Callable[[Tree, int], Awaitable[dict[str, float]]]


async def compare(
    args: argparse.Namespace,
    *,
    key: str,
    title: str,
    run_round: RunRound,
    higher_is_better: Collection[str],
    settings: str,
) -> int:
    """Alternate ``run_round`` on the old and the new tree; print and record the table."""
    started = datetime.now(UTC)
    load_at_start = load_average()
    figures: list[RoundFigures] = []
    checks: dict[str, str] = {}
    with baseline_tree(args.baseline, args.keep) as old:
        new = current_tree()
        trees = {"old": old, "new": new}
        for side, i in alternation(args.rounds):
            tree = trees[side]
            say(f"\n=== {side} round {i} of {args.rounds}: {tree.commit[:12]} in {tree.root} ===")
            values = await run_round(tree, i)
            figures.append(RoundFigures(side, i, values))
            say(
                f"=== {side} round {i}: " + "; ".join(f"{k} {number(v)}" for k, v in values.items())
            )
        checks = {side: trees[side].modules["workflows"] for side in SIDES}
    body = "\n".join(
        [
            provenance(args.database_url, started, load_at_start),
            f"- **Old**: {old.describe()}; **new**: {new.describe()}.",
            f"- **Order**: {', '.join(f'{s} {i}' for s, i in alternation(args.rounds))}; every "
            "round on a fresh stack (dev server, database, worker(s), API) started from that "
            "side's tree (its `worker.py`, `api.main`, migrations and search attributes, with "
            "cwd and `PYTHONPATH` = the tree, checked in `/proc` for each process; `workflows` "
            f"from {checks['old']} and {checks['new']}); the traffic is the new tree's driver.",
            "",
            *table(figures, higher_is_better),
            "",
            "new/old is the ratio of the medians; the paired column is the median of "
            "new i / old i. " + settings,
        ]
    )
    say("\n" + body)
    if not args.no_doc:
        write_section(key, f"{title}: before and after", body, variant=" --baseline")
    return 0
