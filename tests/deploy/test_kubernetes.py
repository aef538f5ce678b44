"""deploy/k8s: every manifest against the Kubernetes schemas (strict, from the pinned
``kubernetes-validate``), and what the schemas cannot know: the kustomization, selectors,
probes on real routes and ports, settings' names and values, graceful shutdown, Temporal."""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from api.auth import PUBLIC, required_scope
from models.adapters.codec import generate_key
from models.settings import Settings
from tests.deploy.files import (
    DEPLOY,
    K8S_BASE,
    SETTINGS_ENV,
    load_all,
    load_yaml,
    search_attribute_types,
)

#: The oldest Kubernetes we support and the newest the schemas know.
VERSIONS = ("1.29.0", "1.37.0")
KUSTOMIZATION = K8S_BASE / "kustomization.yaml"
EXAMPLES = ("secret.example.yaml",)  # validated, but not applied by the kustomization


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    files = [*load_yaml(KUSTOMIZATION)["resources"], *EXAMPLES]
    return [(K8S_BASE / name, doc) for name in files for doc in load_all(K8S_BASE / name)]


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in manifests() if doc["kind"] == kind}


def deployment(name: str) -> dict[str, Any]:
    return by_kind("Deployment")[name]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = only
    return found


def config() -> dict[str, str]:
    data: dict[str, str] = by_kind("ConfigMap")["sendmed-config"]["data"]
    return data


def containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for _, doc in manifests():
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for c in [*spec.get("containers", []), *spec.get("initContainers", [])]:
            yield doc["metadata"]["name"], c


# --------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_kubernetes(version: str) -> None:
    checked = 0
    for path, doc in manifests():
        kubernetes_validate.validate(doc, version, strict=True)
        assert doc["metadata"].get("name"), path
        checked += 1
    assert checked >= 12


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda d: d["spec"].__setitem__("replica", 2), "Additional properties"),
        (lambda d: d["spec"].__setitem__("replicas", "two"), "is not of type"),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__("ports", [{}]),
            "containerPort",
        ),
    ],
)
def test_the_schema_check_catches_mistakes(change: Any, error: str) -> None:
    broken = copy.deepcopy(deployment("sendmed-api"))
    change(broken)
    with pytest.raises(kubernetes_validate.ValidationError, match=error):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(KUSTOMIZATION)
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S_BASE.glob("*.yaml")} - {KUSTOMIZATION.name, *EXAMPLES}
    assert listed == present
    assert kustomization["namespace"] == by_kind("Namespace")["send-referrals"]["metadata"]["name"]
    (image,) = kustomization["images"]
    assert {container(d)["image"] for d in by_kind("Deployment").values()} == {image["name"]}


# --------------------------------------------------------------------------- wiring


def test_selectors_match_their_pods() -> None:
    deployments = by_kind("Deployment")
    for name, doc in deployments.items():
        selector = doc["spec"]["selector"]["matchLabels"]
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name

    def selects(selector: dict[str, str]) -> set[str]:
        return {
            n
            for n, d in deployments.items()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        }

    for name, pdb in by_kind("PodDisruptionBudget").items():
        assert selects(pdb["spec"]["selector"]["matchLabels"]) == {f"sendmed-{name[8:]}"}, name
        assert pdb["spec"]["minAvailable"] < deployments[f"sendmed-{name[8:]}"]["spec"]["replicas"]
    for name, service in by_kind("Service").items():
        (target,) = selects(service["spec"]["selector"])
        ports = {p["name"] for p in container(deployments[target])["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports, name
    (hpa,) = by_kind("HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    assert hpa["spec"]["minReplicas"] >= 2


def test_probes_use_real_public_routes_and_declared_ports() -> None:
    from api.auth import iter_routes
    from api.main import create_app

    routes = {path for methods, path in iter_routes(create_app()) if "GET" in methods}
    api = container(deployment("sendmed-api"))
    api_ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = api[probe]["httpGet"]
        assert get["path"] in routes, probe
        assert required_scope("GET", get["path"]) == PUBLIC, probe
        assert get["port"] in api_ports
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert str(api_ports["http"]) in api["command"]

    worker = container(deployment("sendmed-worker"))
    worker_ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    env = {e["name"]: e.get("value") for e in worker["env"]}
    metrics_port = int(env["SENDMED_WORKER_METRICS_ADDRESS"].rpartition(":")[2])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = worker[probe]["httpGet"]
        assert get["path"] == "/metrics", probe
        assert worker_ports[get["port"]] == metrics_port, probe
    annotations = deployment("sendmed-worker")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(metrics_port)


def test_graceful_shutdown_outlasts_the_work_in_flight() -> None:
    worker = deployment("sendmed-worker")["spec"]["template"]["spec"]
    grace = float(config()["SENDMED_WORKER_GRACEFUL_SHUTDOWN_SECONDS"])
    assert worker["terminationGracePeriodSeconds"] > grace
    api = deployment("sendmed-api")["spec"]["template"]["spec"]
    (c,) = api["containers"]
    pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    uvicorn = int(c["command"][c["command"].index("--timeout-graceful-shutdown") + 1])
    assert api["terminationGracePeriodSeconds"] > pre_stop + uvicorn
    for name, doc in by_kind("Deployment").items():
        assert doc["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name


def test_every_container_has_resources_and_runs_unprivileged() -> None:
    for owner, c in containers():
        assert c["resources"]["requests"], owner
        assert c["resources"]["limits"]["memory"], owner
        security = c["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, owner
        assert security["capabilities"]["drop"] == ["ALL"], owner
    for _, doc in manifests():
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        if pod is not None:
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["automountServiceAccountToken"] is False


# --------------------------------------------------------------------------- settings


def test_every_setting_named_is_a_real_setting() -> None:
    assert set(config()) <= SETTINGS_ENV, sorted(set(config()) - SETTINGS_ENV)
    commented = re.findall(
        r"^\s*# (SENDMED_[A-Z0-9_]+):", (K8S_BASE / "configmap.yaml").read_text(), re.M
    )
    assert commented
    assert set(commented) <= SETTINGS_ENV
    secret = by_kind("Secret")["sendmed-secrets"]["stringData"]
    assert set(secret) <= SETTINGS_ENV, sorted(set(secret) - SETTINGS_ENV)
    for owner, c in containers():
        for env in c.get("env", []):
            name = env["name"]
            assert not name.startswith("SENDMED_") or name in SETTINGS_ENV, (owner, name)
            ref = env.get("valueFrom", {}).get("configMapKeyRef")
            if ref is not None and not ref.get("optional"):
                assert ref["key"] in config(), (owner, ref["key"])
        for source in c.get("envFrom", []):
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] in by_kind("ConfigMap")
            if "secretRef" in source:
                assert source["secretRef"]["name"] in by_kind("Secret")


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [n for n in os.environ if n.startswith("SENDMED_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_the_worker_pods_settings_load_in_production(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    secret = dict(by_kind("Secret")["sendmed-secrets"]["stringData"])
    secret["SENDMED_CODEC_KEYS"] = json.dumps({"2026-01": generate_key()})
    secret["SENDMED_SMTP_PASSWORD"] = "a-real-one"
    worker = container(deployment("sendmed-worker"))
    values = {**config(), **secret, **{e["name"]: e["value"] for e in worker["env"]}}
    for name, value in values.items():
        clean_environment.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.environment == "production"
    assert settings.temporal_target == "temporal-frontend.temporal:7233"
    assert settings.worker_graceful_shutdown_seconds == 30
    assert settings.worker_poller_autoscaling is True
    assert settings.migrate_on_start is False


def test_the_migration_job_runs_the_migrations() -> None:
    job = by_kind("Job")["sendmed-migrate"]
    c = container(job)
    assert c["command"] == ["python", "-m", "models.migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1


# --------------------------------------------------------------------------- Temporal


def test_the_temporal_setup_registers_exactly_our_search_attributes() -> None:
    script = container(by_kind("Job")["sendmed-temporal-setup"])["args"][0]
    pairs = dict(
        re.findall(r"\b([A-Z]\w+):(KeywordList|Keyword|Datetime|Bool|Int|Double|Text)\b", script)
    )
    assert pairs == search_attribute_types()


def test_temporal_values_match_what_the_service_expects() -> None:
    values = load_yaml(DEPLOY / "k8s" / "temporal-values.yaml")
    (namespace,) = values["server"]["config"]["namespaces"]["namespace"]
    assert namespace["name"] == config()["SENDMED_TEMPORAL_NAMESPACE"]
    assert namespace["retention"] == f"{config()['SENDMED_RETENTION_DAYS']}d"
    assert config()["SENDMED_TEMPORAL_ADDRESS"] == "temporal-frontend.temporal:7233"
    stores = values["server"]["config"]["persistence"]["datastores"]
    assert {s["sql"]["pluginName"] for s in stores.values()} == {"postgres12"}
    assert values["server"]["tls"]["frontend"]["requireClientAuth"] is True
    env = {e["name"]: e["value"] for e in values["web"]["additionalEnv"]}
    assert env["TEMPORAL_CODEC_ENDPOINT"] == f"{config()['SENDMED_PUBLIC_BASE_URL']}/codec"


def test_the_ui_cannot_terminate_or_reset_a_referral_on_kubernetes() -> None:
    values = load_yaml(DEPLOY / "k8s" / "temporal-values.yaml")
    env = {e["name"]: e["value"] for e in values["web"]["additionalEnv"]}
    assert env["TEMPORAL_WORKFLOW_TERMINATE_DISABLED"] == "true"
    assert env["TEMPORAL_WORKFLOW_RESET_DISABLED"] == "true"
    assert "TEMPORAL_WORKFLOW_CANCEL_DISABLED" not in env
