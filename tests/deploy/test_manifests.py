"""Static checks of deploy/k8s, deploy/k8s/keda, deploy/prometheus and deploy/grafana: the
Kubernetes objects against the API's own schemas (kubernetes-validate, offline, strict),
the KEDA ScaledObjects against a schema of KEDA's CRD (tests/deploy/
keda_scaledobject.schema.json), the Prometheus files with promtool, and that every query,
rule and panel reads metrics the code exports. No cluster is needed."""

from __future__ import annotations

import copy
import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from aigc.vocab import KINDS
from tests.deploy.observability import (
    ALERTS_FILE,
    KEDA_DIR,
    PROMETHEUS_DIR,
    ROOT,
    alert_rules,
    dashboard,
    dashboard_exprs,
    deployments,
    exported_series,
    k8s_documents,
    keda_queries,
    metric_names,
    scaled_objects,
)
from workers.routing import queues_for_kinds

# The oldest Kubernetes minor the manifests must suit (the API versions they use are GA
# there and later).
KUBERNETES_VERSION = "1.30.0"
KEDA_SCHEMA = json.loads((Path(__file__).parent / "keda_scaledobject.schema.json").read_text())
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: `make test-servers` installs Debian's prometheus"
)
GPU_KINDS = {"text", "image"}


def k8s_ids() -> list[str]:
    return [f"{path.name}:{doc['kind']}/{doc['metadata']['name']}" for path, doc in k8s_documents()]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def pod_workloads() -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_documents() if doc["kind"] in {"Deployment", "Job"}]


@pytest.mark.parametrize("doc", [doc for _, doc in k8s_documents()], ids=k8s_ids())
def test_k8s_object_matches_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_kubernetes_check_catches_a_misspelt_field() -> None:
    doc = copy.deepcopy(deployments()["api"])
    containers(doc)[0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_everything_lives_in_the_aigc_namespace() -> None:
    for path, doc in k8s_documents():
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "aigc", path.name
    for path in KEDA_DIR.glob("*.yaml"):
        assert scaled_objects()[path.stem]["metadata"]["namespace"] == "aigc", path.name


def test_the_expected_deployments_exist() -> None:
    expected = {"api", "dispatcher", "deliverer", *(f"worker-{kind}" for kind in KINDS)}
    assert set(deployments()) == expected


@pytest.mark.parametrize("doc", pod_workloads(), ids=lambda d: d["metadata"]["name"])
def test_container_commands_are_real_cli_commands(doc: dict[str, Any]) -> None:
    from typer.testing import CliRunner

    from aigc.cli.main import app

    for container in containers(doc):
        command = container["command"]
        assert command[0] == "aigc", command
        result = CliRunner().invoke(app, [*command[1:], "--help"])
        assert result.exit_code == 0, f"{shlex.join(command)} --help:\n{result.output}"


@pytest.mark.parametrize("doc", pod_workloads(), ids=lambda d: d["metadata"]["name"])
def test_pods_run_as_the_images_non_root_user(doc: dict[str, Any]) -> None:
    pod = doc["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # AIGC_UID of both images
    for container in pod["containers"]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("kind", KINDS)
def test_worker_deployment_consumes_its_kinds_queues(kind: str) -> None:
    (container,) = containers(deployments()[f"worker-{kind}"])
    command = container["command"]
    assert command[:2] == ["aigc", "worker"]
    served = command[command.index("--queues") + 1].split(",")
    assert served == [kind]
    # What the CLI turns that into: the kind's tiers, as workers.routing names them.
    assert queues_for_kinds(served) == [f"{kind}.high", f"{kind}.normal", f"{kind}.low"]


@pytest.mark.parametrize("kind", KINDS)
def test_worker_gpu_requests(kind: str) -> None:
    (container,) = containers(deployments()[f"worker-{kind}"])
    resources = container["resources"]
    if kind in GPU_KINDS:
        # An extended resource: requests, where given, must equal limits.
        assert resources["limits"]["nvidia.com/gpu"] == 1
        assert resources["requests"].get("nvidia.com/gpu", 1) == 1
    else:
        assert "nvidia.com/gpu" not in resources.get("limits", {})


@pytest.mark.parametrize(
    "name,port",
    [
        ("api", 8000),
        ("dispatcher", 9102),
        ("deliverer", 9103),
        *((f"worker-{k}", 9101) for k in KINDS),
    ],
)
def test_scraped_pods_announce_their_metrics_port(name: str, port: int) -> None:
    doc = deployments()[name]
    annotations = doc["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    (container,) = containers(doc)
    assert port in {p["containerPort"] for p in container["ports"]}
    # The metrics servers need the token too: their /metrics is not open.
    token = next(e for e in container["env"] if e["name"] == "AIGC_METRICS_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "aigc-secrets", "key": "metrics-token"}


def test_config_sets_the_metrics_ports_the_pods_announce() -> None:
    config = next(doc for _, doc in k8s_documents() if doc["kind"] == "ConfigMap")["data"]
    assert config["AIGC_WORKER_METRICS_PORT"] == "9101"
    assert config["AIGC_DISPATCHER_METRICS_PORT"] == "9102"
    assert config["AIGC_DELIVERER_METRICS_PORT"] == "9103"
    assert config["AIGC_METRICS_HOST"] == "0.0.0.0"
    assert not any("TOKEN" in key or "KEY" in key for key in config), "secrets go in a Secret"


@pytest.mark.parametrize("name", sorted(scaled_objects()))
def test_scaled_object_matches_kedas_schema(name: str) -> None:
    jsonschema.validate(scaled_objects()[name], KEDA_SCHEMA)


def test_the_keda_check_catches_a_misspelt_field() -> None:
    doc = copy.deepcopy(scaled_objects()["worker-image"])
    doc["spec"]["minReplicas"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, KEDA_SCHEMA)


@pytest.mark.parametrize("kind", KINDS)
def test_each_worker_kind_scales_on_its_queue_depth(kind: str) -> None:
    target = f"worker-{kind}"
    scaled = scaled_objects()[target]
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": target,
    }
    assert target in deployments()
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    query = keda_queries()[target]
    assert metric_names(query) == {"aigc_queue_depth"}
    assert f'kind="{kind}"' in query
    assert int(trigger["metadata"]["threshold"]) > 0


@pytest.mark.parametrize("target,query", sorted(keda_queries().items()))
def test_keda_queries_read_exported_metrics(target: str, query: str) -> None:
    assert metric_names(query) <= exported_series(), query


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_rules_read_exported_metrics(rule: dict[str, Any]) -> None:
    names = metric_names(rule["expr"])
    assert names, rule["expr"]
    assert names <= exported_series(), names - exported_series()


def test_the_asked_for_alerts_exist() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    assert "aigc_queue_oldest_age_seconds" in exprs["AigcBacklogOld"]
    assert 'status="failed"' in exprs["AigcJobFailureRatio"]
    assert "aigc_worker_serving" in exprs["AigcNoWorkerForQueue"]


def test_dashboard_panels_read_exported_metrics() -> None:
    exprs = dashboard_exprs()
    used = set().union(*(metric_names(expr) for expr in exprs))
    assert used <= exported_series(), used - exported_series()
    # Backlog, age, throughput, failures and GPU memory are all on it.
    for name in (
        "aigc_queue_depth",
        "aigc_queue_oldest_age_seconds",
        "aigc_jobs_finished_total",
        "aigc_gpu_memory_used_bytes",
        "aigc_gpu_memory_peak_bytes",
    ):
        assert name in used, name


def test_dashboard_is_importable() -> None:
    board = dashboard()
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    assert board["uid"] == "aigc-jobs"
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]


@needs_promtool
def test_promtool_accepts_the_alert_rules() -> None:
    result = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(ALERTS_FILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


@needs_promtool
@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus-k8s.yml"])
def test_promtool_accepts_the_scrape_config(name: str) -> None:
    # Syntax only: the token file exists in the Prometheus container, not here.
    result = subprocess.run(
        [str(PROMTOOL), "check", "config", "--syntax-only", str(PROMETHEUS_DIR / name)],
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    if "kubernetes_sd_configs not found" in output:
        pytest.skip("this promtool was built without Kubernetes service discovery (Debian's)")
    assert result.returncode == 0, output


def test_scrape_configs_load_the_alert_rules() -> None:
    import yaml

    for name in ("prometheus.yml", "prometheus-k8s.yml"):
        config = yaml.safe_load((PROMETHEUS_DIR / name).read_text())
        assert config["rule_files"] == ["alerts.yml"], name


def test_compose_runs_prometheus_on_these_files() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    prometheus = compose["services"]["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert compose["secrets"]["aigc_metrics_token"] == {"environment": "AIGC_METRICS_TOKEN"}
    token = compose["x-aigc-env"]["AIGC_METRICS_TOKEN"]
    assert token.startswith("${AIGC_METRICS_TOKEN:?"), token
    assert prometheus["ports"] == ["${PROMETHEUS_BIND:-127.0.0.1}:9090:9090"]
