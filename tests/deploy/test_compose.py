"""deploy/compose: the Compose file against the Compose Specification's JSON schema (vendored
from ``check-jsonschema``), and what the schema cannot know: references, one-shots, scaling,
health checks, settings' names and values, search attributes, the files it mounts."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from models.adapters.codec import generate_key
from models.settings import Settings
from tests.deploy.files import (
    COMPOSE_DIR,
    ROOT,
    SETTINGS_ENV,
    env_file,
    load_yaml,
    search_attribute_types,
)

SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"
OURS = ("migrate", "api", "worker")  # built from deploy/Dockerfile
SCALED = ("api", "worker")
ONE_SHOTS = ("migrate", "temporal-schema", "temporal-setup")
DURATION = re.compile(r"^(\d+(\.\d+)?(us|ms|s|m|h))+$")
VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``, from ``values``."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        default = re.match(r"\$\{[A-Z0-9_]+:-([^}]*)\}", match.group(0))
        assert default, f"{match.group(0)} has no default and no value"
        return default.group(1)

    return VARIABLE.sub(one, text)


# --------------------------------------------------------------------------- the schema


def test_the_vendored_schema_is_the_published_one() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("services", "api", "depends_on", "migrate", "condition"), "when_ready"),
        (("services", "worker", "healthcheck", "test"), 42),
        (("services", "api", "expose"), "8000"),
        (("services", "api", "restart_policy"), "always"),
    ],
)
def test_the_schema_check_catches_mistakes(path: tuple[str, ...], bad: object) -> None:
    document = copy.deepcopy(compose())
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    assert schema_errors(document) != []


# --------------------------------------------------------------------------- structure


def test_every_service_has_a_pinned_image_or_our_build() -> None:
    for name, service in services().items():
        assert "image" in service or "build" in service, name
        if name in OURS:
            assert service["build"]["dockerfile"] == "deploy/Dockerfile"
            assert (COMPOSE_DIR / service["build"]["context"] / "deploy/Dockerfile").is_file()
            continue
        image = service["image"]
        tag = image.rpartition(":")[2]
        assert ":" in image, (name, image)
        assert tag != "latest", (name, image)
        assert re.search(r"\d", tag), (name, image)


def test_depends_on_names_real_services_and_one_shots_run_first() -> None:
    all_services = services()
    for name, service in all_services.items():
        depends = service.get("depends_on", {})
        targets = depends if isinstance(depends, list) else list(depends)
        assert set(targets) <= set(all_services), (name, targets)
        if isinstance(depends, dict):
            for target, how in depends.items():
                if how.get("condition") == "service_healthy":
                    assert "healthcheck" in all_services[target], (name, target)
                if how.get("condition") == "service_completed_successfully":
                    assert target in ONE_SHOTS, (name, target)
    for one_shot in ONE_SHOTS:
        assert not str(all_services[one_shot].get("restart", "no")).startswith("unless"), one_shot
    for name in SCALED:
        depends = all_services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["temporal-setup"]["condition"] == "service_completed_successfully"
    assert services()["migrate"]["command"] == ["python", "-m", "models.migrate"]


def test_the_api_and_the_worker_can_be_scaled() -> None:
    """``--scale api=N``: no fixed container name and no host port on a scaled service."""
    for name in SCALED:
        service = services()[name]
        assert "container_name" not in service, name
        assert "ports" not in service, name
    proxy = services()["proxy"]
    assert any(str(p).endswith(":8080") for p in proxy["ports"])
    template = (COMPOSE_DIR / "proxy" / "default.conf.template").read_text()
    assert "http://api:8000" in template
    assert "resolver 127.0.0.11" in template


def test_health_checks_are_well_formed_and_probe_real_endpoints() -> None:
    from api.auth import PUBLIC, required_scope

    for name, service in services().items():
        check = service.get("healthcheck")
        if check is None:
            continue
        test = check["test"]
        assert isinstance(test, list), name
        assert test[0] in ("CMD", "CMD-SHELL"), name
        assert len(test) > 1, name
        for key in ("interval", "timeout", "start_period"):
            if key in check:
                assert DURATION.match(check[key]), (name, key, check[key])
        assert int(check["retries"]) >= 1, name
    api_check = " ".join(services()["api"]["healthcheck"]["test"])
    path = re.search(r"http://127\.0\.0\.1:8000(/\w+)", api_check)
    assert path
    assert path.group(1) == "/readyz"
    assert required_scope("GET", path.group(1)) == PUBLIC  # no key needed by the probe
    worker = services()["worker"]
    address = worker["environment"]["SENDMED_WORKER_METRICS_ADDRESS"]
    port = address.rpartition(":")[2]
    assert f"127.0.0.1:{port}/metrics" in " ".join(worker["healthcheck"]["test"])
    assert port in [str(p) for p in worker["expose"]]


def test_the_worker_gets_time_to_finish_its_activities() -> None:
    worker = services()["worker"]
    grace = float(worker["environment"]["SENDMED_WORKER_GRACEFUL_SHUTDOWN_SECONDS"])
    assert int(worker["stop_grace_period"].removesuffix("s")) > grace


# --------------------------------------------------------------------------- settings


def our_environment(service: str, values: dict[str, str]) -> dict[str, str]:
    env = {k: str(v) for k, v in services()[service]["environment"].items()}
    return {k: interpolate(v, values) for k, v in env.items()}


def test_environment_names_are_real_settings() -> None:
    example = env_file(COMPOSE_DIR / "sendmed.env.example")
    for name in OURS:
        assert services()[name]["env_file"] == ["sendmed.env"]
        names = {k for k in services()[name]["environment"] if k.startswith("SENDMED_")}
        assert names <= SETTINGS_ENV, sorted(names - SETTINGS_ENV)
    assert set(example) <= SETTINGS_ENV, sorted(set(example) - SETTINGS_ENV)
    commented = re.findall(
        r"^# (SENDMED_[A-Z0-9_]+)=", (COMPOSE_DIR / "sendmed.env.example").read_text(), re.M
    )
    assert set(commented) <= SETTINGS_ENV, sorted(set(commented) - SETTINGS_ENV)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in [n for n in os.environ if n.startswith("SENDMED_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_the_services_settings_load_in_production(clean_environment: pytest.MonkeyPatch) -> None:
    """What the worker container sees (compose environment + sendmed.env with a real key)
    builds ``Settings`` in production; the example's placeholder key is refused."""
    passwords = {
        "SENDMED_DB_PASSWORD": "s3cret-db",
        "TEMPORAL_DB_PASSWORD": "x",
        "POSTGRES_PASSWORD": "y",
        "PUBLIC_BASE_URL": "https://send-referrals.example.org",
    }
    secrets = env_file(COMPOSE_DIR / "sendmed.env.example")
    for name, value in {**secrets, **our_environment("worker", passwords)}.items():
        clean_environment.setenv(name, value)
    with pytest.raises(ValueError, match=r"codec key|placeholder"):
        Settings(_env_file=None)
    clean_environment.setenv("SENDMED_CODEC_KEYS", json.dumps({"2026-01": generate_key()}))
    settings = Settings(_env_file=None)
    assert settings.environment == "production"
    assert settings.database_target.startswith("postgresql+psycopg://sendmed:s3cret-db@postgres")
    assert settings.temporal_target == "temporal:7233"
    assert settings.worker_metrics_address == "0.0.0.0:9464"
    assert settings.ui_origins == ("http://localhost:8080", "http://127.0.0.1:8080")
    assert settings.migrate_on_start is False
    assert settings.api_base_url == "https://send-referrals.example.org"
    for local in ("http://localhost:8000", "https://localhost", "https://127.0.0.1:8000"):
        clean_environment.setenv("SENDMED_PUBLIC_BASE_URL", local)
        with pytest.raises(ValueError, match="public_base_url"):
            Settings(_env_file=None)


# --------------------------------------------------------------------------- Temporal


def test_the_setup_registers_exactly_our_search_attributes() -> None:
    script = (COMPOSE_DIR / "temporal" / "setup-namespace.sh").read_text()
    registered = dict(re.findall(r"^sa (\w+) (\w+)$", script, re.M))
    assert registered == search_attribute_types()


def test_the_ui_decodes_through_our_codec_endpoint() -> None:
    ui = services()["temporal-ui"]["environment"]
    endpoint = interpolate(ui["TEMPORAL_CODEC_ENDPOINT"], {})
    assert endpoint == "http://localhost:8081/codec"
    proxy = services()["proxy"]
    assert any(str(p).endswith(":8081") for p in proxy["ports"])
    assert "location /codec/" in (COMPOSE_DIR / "proxy" / "default.conf.template").read_text()
    api_env = our_environment(
        "api", {"SENDMED_DB_PASSWORD": "x", "PUBLIC_BASE_URL": "https://send.example.org"}
    )
    assert "http://localhost:8080" in json.loads(api_env["SENDMED_UI_ORIGIN"])


# --------------------------------------------------------------------------- files


def test_every_file_the_stack_mounts_exists() -> None:
    document = compose()
    for name, service in document["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), (name, source)
    for name, secret in document["secrets"].items():
        path = COMPOSE_DIR / secret["file"]
        assert path.with_name(path.name + ".example").is_file(), name
    assert (COMPOSE_DIR / "sendmed.env.example").is_file()
    assert (COMPOSE_DIR / ".env.example").is_file()
    ignored = (COMPOSE_DIR / ".gitignore").read_text().split()
    assert {".env", "sendmed.env", "secrets/*"} <= set(ignored)


def test_every_required_variable_is_in_the_env_example() -> None:
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text()))
    assert required <= set(env_file(COMPOSE_DIR / ".env.example")), required


@pytest.mark.parametrize("script", sorted((ROOT / "deploy" / "compose").rglob("*.sh")), ids=str)
def test_shell_scripts_parse(script: Path) -> None:
    shell = shutil.which("sh")
    assert shell is not None
    result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_prometheus_scrapes_our_services_where_they_listen() -> None:
    config = load_yaml(COMPOSE_DIR / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["send-referrals-api"]
    assert api["dns_sd_configs"][0]["names"] == ["api"]
    assert api["dns_sd_configs"][0]["port"] == 8000
    secret = api["authorization"]["credentials_file"].rpartition("/")[2]
    assert secret in compose()["secrets"]
    worker = jobs["send-referrals-worker"]["dns_sd_configs"][0]
    assert worker["names"] == ["worker"]
    assert worker["port"] == 9464


def test_the_ui_cannot_terminate_or_reset_a_referral_when_deployed() -> None:
    # Terminate and Reset stop a workflow without letting it close its case; the UI server's
    # own switches (temporalio/ui-server docker/config-template.yaml) turn the buttons off.
    # Request Cancellation stays on: the workflow closes the case as an operator closure.
    ui = services()["temporal-ui"]["environment"]
    assert ui["TEMPORAL_WORKFLOW_TERMINATE_DISABLED"] == "true"
    assert ui["TEMPORAL_WORKFLOW_RESET_DISABLED"] == "true"
    assert "TEMPORAL_WORKFLOW_CANCEL_DISABLED" not in ui
