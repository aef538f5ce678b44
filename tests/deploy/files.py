"""What the deploy tests share: paths, YAML loading, and the real settings' env names."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from models.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
K8S_BASE = DEPLOY / "k8s" / "base"
DASHBOARD = DEPLOY / "grafana" / "send-referrals.json"

#: Every setting's environment variable (``env_prefix`` + field name; no aliases are used).
SETTINGS_ENV: frozenset[str] = frozenset(
    f"SENDMED_{name.upper()}" for name in Settings.model_fields
)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all(path: Path) -> Iterator[dict[str, Any]]:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            yield doc


def env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (comments and blanks skipped), as Compose and pydantic read them."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=value: {raw!r}"
        values[key.strip()] = value.strip()
    return values


def search_attribute_types() -> dict[str, str]:
    """Our search attributes as the temporal CLI names their types (Keyword, Bool…)."""
    from workflows import search_attributes

    flags = search_attributes.cli_flags()
    pairs = [flags[i + 1] for i in range(0, len(flags), 2)]
    return dict(pair.split("=", 1) for pair in pairs)


def run_local() -> ModuleType:
    """``deploy/run_local.py`` (``make run``) as a module, to read how it starts things."""
    loaded = sys.modules.get("run_local")
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("run_local", DEPLOY / "run_local.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_local"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module
