"""deploy/Dockerfile: what it copies exists (and is not excluded from the build context), it
is multi-stage on python:3.11-slim, runs as a non-root user, installs the locked versions, and
starts the real application."""

from __future__ import annotations

import re
import tomllib

from tests.deploy.files import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "Dockerfile"
IGNORE = DEPLOY / "Dockerfile.dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    assert not pending
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined]


def test_every_copied_file_exists_and_is_in_the_build_context() -> None:
    allowed = {
        line.lstrip("!").rstrip("/")
        for line in IGNORE.read_text().splitlines()
        if line.startswith("!")
    }
    copied = 0
    for instruction, args in instructions():
        if instruction != "COPY" or "--from=" in args:
            continue
        *sources, _ = [a for a in args.split() if not a.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.rstrip("/") in allowed, f"{source} is excluded by {IGNORE.name}"
            copied += 1
    assert copied >= 6


def test_multi_stage_slim_python_non_root() -> None:
    steps = instructions()
    args = dict(a.split("=", 1) for i, a in steps if i == "ARG" and "=" in a)
    stages = [a for i, a in steps if i == "FROM"]
    assert len(stages) >= 2
    assert re.match(r"^python:3\.11-slim", args["PYTHON_IMAGE"])
    assert all(s.startswith("${PYTHON_IMAGE}") for s in stages)
    final = max(n for n, (i, _) in enumerate(steps) if i == "FROM")
    users = [a for i, a in steps[final:] if i == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("0", "root")
    assert any(i == "COPY" and "--from=build" in a for i, a in steps[final:])


def test_it_installs_the_locked_versions_of_the_runtime_dependencies() -> None:
    runs = " ".join(a for i, a in instructions() if i == "RUN")
    assert "-c requirements.lock" in runs
    lock = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name, _, version = requirement.partition("==")
        base = name.split("[")[0].lower().replace("_", "-")
        assert version, f"{requirement} is not pinned"
        assert lock.get(base) == version, f"{requirement} disagrees with requirements.lock"


def test_it_starts_the_real_application() -> None:
    (cmd,) = [a for i, a in instructions() if i == "CMD"]
    assert "api.main:create_app" in cmd
    assert "--factory" in cmd
    from api.main import create_app

    assert callable(create_app)
    assert (ROOT / "worker.py").is_file()
    assert (ROOT / "models" / "migrate.py").is_file()
