"""What the deploy/ files say about metrics, read once for the deploy tests: the metric names
the code exports, the names each PromQL expression uses, the KEDA queries, the alert rules
and the dashboard's expressions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "k8s"
KEDA_DIR = K8S_DIR / "keda"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTS_FILE = PROMETHEUS_DIR / "alerts.yml"
DASHBOARD_FILE = ROOT / "deploy" / "grafana" / "aigc-dashboard.json"
# Where the code names its metrics; the API's come from prometheus-fastapi-instrumentator
# under the `aigc` namespace (api/metrics.py).
METRIC_SOURCES = ("aigc/metrics.py", "workers/metrics.py")
INSTRUMENTATOR_METRICS = {"aigc_http_requests_total", "aigc_http_request_duration_seconds"}
# The series a family of each type exposes.
SERIES_SUFFIXES = ("", "_total", "_bucket", "_count", "_sum", "_created")
# What Grafana substitutes in an expression before Prometheus sees it.
GRAFANA_VARIABLES = {"$__rate_interval": "1m"}


def exported_families() -> set[str]:
    names = set(INSTRUMENTATOR_METRICS)
    for source in METRIC_SOURCES:
        names.update(re.findall(r'"(aigc_[a-z0-9_]+)"', (ROOT / source).read_text()))
    return names


def exported_series() -> set[str]:
    return {family + suffix for family in exported_families() for suffix in SERIES_SUFFIXES}


def metric_names(expr: str) -> set[str]:
    """The aigc_* metric names a PromQL expression reads."""
    return set(re.findall(r"\baigc_[a-z0-9_]+", expr))


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in sorted(K8S_DIR.glob("*.yaml")) for doc in yaml_documents(path)]


def deployments() -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"]: doc for _, doc in k8s_documents() if doc["kind"] == "Deployment"
    }


def scaled_objects() -> dict[str, dict[str, Any]]:
    return {
        path.stem: doc for path in sorted(KEDA_DIR.glob("*.yaml")) for doc in yaml_documents(path)
    }


def keda_queries() -> dict[str, str]:
    """Each ScaledObject's Prometheus query, by the Deployment it scales."""
    queries = {}
    for doc in scaled_objects().values():
        (trigger,) = doc["spec"]["triggers"]
        queries[doc["spec"]["scaleTargetRef"]["name"]] = trigger["metadata"]["query"]
    return queries


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return data


def dashboard_exprs() -> list[str]:
    """Every target's expression, with Grafana's variables as Grafana would fill them."""
    exprs = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            exprs.append(expr)
    return exprs
