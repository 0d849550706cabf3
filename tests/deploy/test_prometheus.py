"""A real Prometheus server (Debian's `prometheus`) scraping a running stack: API, dispatcher
and a text-only worker, all behind the metrics token, with deploy/prometheus/alerts.yml
loaded. A batch of image jobs waits (no image worker), and Prometheus' HTTP API must show
its queue depth and oldest age with the right labels, evaluate each KEDA query to the
number of jobs waiting, put the "no worker for a queue" alert in pending for images only,
and evaluate every alert rule and dashboard panel without an error."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aigc.cli.stack import stop_process
from aigc.settings import Settings
from tests.conftest import TeamKey
from tests.deploy.observability import ALERTS_FILE, dashboard_exprs, keda_queries
from tests.live import submit, wait_for_job
from tests.metrics.live import MetricsStack, metrics_stack

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="/usr/bin/prometheus missing: `make test-servers` installs it (as root)",
)

IMAGE_JOBS = 12
SERIES_TIMEOUT_S = 60.0  # a few scrape and evaluation rounds of 1 s, on a busy machine


def scrape_config(stack: MetricsStack, token_file: Path) -> dict[str, Any]:
    def job(name: str, url: str) -> dict[str, Any]:
        address = url.removeprefix("http://").split("/", 1)[0]
        return {
            "job_name": name,
            "authorization": {"credentials_file": str(token_file)},
            "static_configs": [{"targets": [address]}],
        }

    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS_FILE)],
        "scrape_configs": [
            job("aigc-api", stack.api_url),
            job("aigc-dispatcher", stack.dispatcher_metrics_url),
            job("aigc-worker", stack.worker_metrics_url),
        ],
    }


class Prometheus:
    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=10)

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.client.get("/api/v1/query", params={"query": expr}).json()
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]  # type: ignore[no-any-return]

    def wait_for(
        self, expr: str, check: Callable[[list[dict[str, Any]]], bool]
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + SERIES_TIMEOUT_S
        while True:
            result = self.query(expr)
            if check(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr}: still {result} after {SERIES_TIMEOUT_S}s")
            time.sleep(0.5)

    def get(self, path: str) -> Any:
        body = self.client.get(path).json()
        assert body["status"] == "success", body
        return body["data"]


@pytest.fixture
def stack(
    settings: Settings, model_dir: Path, free_port: Callable[[], int], tmp_path: Path
) -> Iterator[MetricsStack]:
    with metrics_stack(settings, model_dir, free_port, "text", tmp_path / "logs") as stack:
        yield stack


@pytest.fixture
def prometheus(
    stack: MetricsStack, free_port: Callable[[], int], tmp_path: Path
) -> Iterator[Prometheus]:
    token_file = tmp_path / "metrics-token"
    token_file.write_text(stack.token)
    token_file.chmod(0o600)
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(stack, token_file)))
    address = f"127.0.0.1:{free_port()}"
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address={address}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                if httpx.get(f"http://{address}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not become ready"
            time.sleep(0.3)
        yield Prometheus(f"http://{address}")
    finally:
        stop_process(proc)
        log.close()


def only_value(result: list[dict[str, Any]]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_prometheus_sees_the_waiting_batch(
    stack: MetricsStack, prometheus: Prometheus, team: TeamKey
) -> None:
    with httpx.Client(base_url=stack.api_url, headers=team.headers, timeout=30) as client:
        done = submit(client, kind="text", model="echo", prompt="ran")
        assert wait_for_job(client, done["id"])["status"] == "succeeded"
        jobs = [{"kind": "image", "prompt": f"cat {n}"} for n in range(IMAGE_JOBS)]
        response = client.post("/v1/batches", json={"jobs": jobs, "priority": "low"})
        assert response.status_code == 202, response.text

    # Every target is scraped, with the token.
    up = prometheus.wait_for("up == 1", lambda r: len(r) == 3)
    assert {s["metric"]["job"] for s in up} == {"aigc-api", "aigc-dispatcher", "aigc-worker"}

    depth = prometheus.wait_for(
        'aigc_queue_depth{kind="image"}',
        lambda r: bool(r) and float(r[0]["value"][1]) == IMAGE_JOBS,
    )
    (series,) = depth
    labels = {k: v for k, v in series["metric"].items() if k not in {"instance"}}
    assert labels == {
        "__name__": "aigc_queue_depth",
        "job": "aigc-dispatcher",
        "kind": "image",
        "priority": "low",
        "team": team.name,
    }
    age_expr = f'aigc_queue_oldest_age_seconds{{kind="image",priority="low",team="{team.name}"}}'
    first_age = only_value(prometheus.wait_for(age_expr, bool))
    # The batch keeps waiting: its age grows from one scrape to the next.
    later_age = only_value(
        prometheus.wait_for(age_expr, lambda r: bool(r) and float(r[0]["value"][1]) > first_age)
    )
    assert 0 <= first_age < later_age < SERIES_TIMEOUT_S * 2
    print(f"\n{series['metric']} = {series['value'][1]}; oldest age {first_age} -> {later_age}")

    # What KEDA would read: the waiting images for the image workers, zero for the others.
    for target, query in keda_queries().items():
        value = only_value(prometheus.query(query))
        assert value == (IMAGE_JOBS if target == "worker-image" else 0), (target, query)

    # The worker's own series came through the scrape too.
    finished = 'aigc_jobs_finished_total{kind="text",model="echo",status="succeeded"}'
    assert only_value(prometheus.wait_for(finished, bool)) == 1
    assert only_value(prometheus.query('aigc_worker_serving{kind="text"}')) == 1
    assert only_value(prometheus.query("aigc_dispatcher_leader")) == 1

    # The alert rules: images wait with no worker for them (pending until its `for`), and
    # nothing else is wrong.
    alerts = prometheus.wait_for('ALERTS{alertname="AigcNoWorkerForQueue"}', lambda r: len(r) >= 1)
    assert [(a["metric"]["kind"], a["metric"]["alertstate"]) for a in alerts] == [
        ("image", "pending")
    ]
    assert {a["metric"]["alertname"] for a in prometheus.query("ALERTS")} == {
        "AigcNoWorkerForQueue"
    }
    rules = [r for group in prometheus.get("/api/v1/rules")["groups"] for r in group["rules"]]
    assert rules and all(rule["health"] == "ok" for rule in rules), rules

    # Every dashboard panel's query runs (a typo'd function or label would fail here).
    for expr in dashboard_exprs():
        prometheus.query(expr)
