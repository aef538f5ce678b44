"""Every way the API is started (the Dockerfile, Compose, Kubernetes and ``make run``) sends
no ``server: uvicorn`` banner, and every deployment states its webhook allowlist."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from models.settings import Settings
from tests.deploy.files import run_local
from tests.deploy.test_compose import services
from tests.deploy.test_dockerfile import instructions
from tests.deploy.test_kubernetes import config, container, deployment


def run_local_api_command() -> list[str]:
    command: list[str] = run_local().api_command(Settings(_env_file=None))
    return command


def dockerfile_command() -> list[str]:
    (cmd,) = [a for i, a in instructions() if i == "CMD"]
    command: list[str] = json.loads(cmd)
    return command


LAUNCHES: dict[str, Callable[[], list[str]]] = {
    "Dockerfile": dockerfile_command,
    "compose": lambda: list(services()["api"]["command"]),
    "kubernetes": lambda: list(container(deployment("sendmed-api"))["command"]),
    "make run": run_local_api_command,
}


@pytest.mark.parametrize("where", sorted(LAUNCHES))
def test_the_api_sends_no_server_banner_when_started_from(where: str) -> None:
    command = LAUNCHES[where]()
    assert "uvicorn" in " ".join(command)
    assert "--no-server-header" in command


def test_every_deployment_states_its_webhook_allowlist_when_deployed() -> None:
    assert json.loads(config()["SENDMED_WEBHOOK_ALLOWED_HOSTS"]) == []
    environment = services()["api"]["environment"]
    assert json.loads(environment["SENDMED_WEBHOOK_ALLOWED_HOSTS"]) == []
