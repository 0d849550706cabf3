"""/metrics of real API, worker and dispatcher processes: behind the token, parseable by
prometheus_client's parser, and carrying the documented series once a job has run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from aigc.cli.stack import spawn, stop_process, wait_for_http
from aigc.settings import Settings
from tests.conftest import TeamKey
from tests.live import stack_env, submit, wait_for_job
from tests.metrics.live import MetricsStack, metrics_stack, scrape, value


@pytest.fixture
def stack(
    settings: Settings,
    model_dir: Path,
    free_port: Callable[[], int],
    tmp_path: Path,
) -> Iterator[MetricsStack]:
    with metrics_stack(settings, model_dir, free_port, "text", tmp_path / "logs") as stack:
        yield stack


def test_metrics_need_the_token(stack: MetricsStack) -> None:
    for url in (
        f"{stack.api_url}/metrics",
        stack.worker_metrics_url,
        stack.dispatcher_metrics_url,
    ):
        assert httpx.get(url).status_code == 401, url
        wrong = {"Authorization": "Bearer " + "0" * len(stack.token)}
        assert httpx.get(url, headers=wrong).status_code == 401, url
        assert httpx.get(url, headers=stack.auth).status_code == 200, url


def test_series_after_a_job_ran(stack: MetricsStack, team: TeamKey) -> None:
    with httpx.Client(base_url=stack.api_url, headers=team.headers, timeout=30) as client:
        job = submit(client, kind="text", model="echo", prompt="count me")
        assert wait_for_job(client, job["id"])["status"] == "succeeded"
        # A job of a kind no worker here serves: it stays queued.
        waiting = submit(client, kind="image", prompt="wait", priority="high")
        assert client.get(f"/v1/jobs/{waiting['id']}").status_code == 200
        time.sleep(0.5)  # the dispatcher's round after the submission

    api = scrape(f"{stack.api_url}/metrics", stack.auth)
    # Route templates, not paths: a job id never becomes a label.
    handlers = {s.labels.get("handler") for s in api if "handler" in s.labels}
    assert "/v1/jobs/{job_id}" in handlers and "/v1/jobs" in handlers
    assert not any(job["id"] in str(h) for h in handlers)
    assert (
        value(api, "aigc_http_requests_total", handler="/v1/jobs", method="POST", status="202") == 2
    )
    assert (
        value(
            api,
            "aigc_http_request_duration_seconds_count",
            handler="/v1/jobs",
            method="POST",
            status="202",
        )
        == 2
    )
    assert "/metrics" not in handlers

    worker = scrape(stack.worker_metrics_url, stack.auth)
    echo = {"kind": "text", "model": "echo"}
    assert value(worker, "aigc_jobs_finished_total", status="succeeded", **echo) == 1
    assert value(worker, "aigc_job_run_seconds_count", **echo) == 1
    assert value(worker, "aigc_job_wait_seconds_count", **echo) == 1
    assert value(worker, "aigc_chunk_jobs_count", kind="text") == 1
    assert value(worker, "aigc_chunk_jobs_sum", kind="text") == 1
    assert value(worker, "aigc_model_load_seconds_count", model="echo") == 1
    assert (value(worker, "aigc_worker_busy_seconds_total") or 0) > 0
    assert value(worker, "aigc_worker_busy") == 0
    assert value(worker, "aigc_worker_serving", kind="text") == 1
    assert value(worker, "aigc_worker_serving", kind="image") is None
    # No CUDA here: no GPU series rather than zeros.
    assert value(worker, "aigc_gpu_memory_used_bytes") is None

    dispatcher = scrape(stack.dispatcher_metrics_url, stack.auth)
    queued = {"kind": "image", "priority": "high", "team": team.name}
    assert value(dispatcher, "aigc_dispatcher_leader") == 1
    assert value(dispatcher, "aigc_queue_depth", **queued) == 1
    assert (value(dispatcher, "aigc_queue_oldest_age_seconds", **queued) or -1) >= 0
    assert value(dispatcher, "aigc_jobs_active", status="queued", **queued) == 1
    assert (value(dispatcher, "aigc_dispatched_jobs_total", kind="text") or 0) >= 1
    # The finished job is not in the queue series.
    assert value(dispatcher, "aigc_queue_depth", kind="text") is None


def test_several_api_processes_report_one_total(
    settings: Settings, model_dir: Path, free_port: Callable[[], int], tmp_path: Path
) -> None:
    port = free_port()
    var_dir = tmp_path / "var"
    env = stack_env(settings, model_dir, AIGC_VAR_DIR=str(var_dir))
    # A file left by an earlier run must not count.
    stale = var_dir / "prometheus" / f"api-{port}"
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"not a metrics file")
    api = spawn("api", ["api", "--port", str(port), "--workers", "2"], env, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", 120, api)
        # New connections, so the kernel spreads them over both processes.
        for _ in range(40):
            assert httpx.get(f"{url}/healthz").status_code == 200
        samples = scrape(f"{url}/metrics", {})
    finally:
        stop_process(api)
    total = sum(
        s.value
        for s in samples
        if s.name == "aigc_http_requests_total" and s.labels.get("handler") == "/healthz"
    )
    # The 40 probes plus those of wait_for_http, whichever process answered each.
    assert total >= 41
    pids = {path.stem.rsplit("_", 1)[-1] for path in stale.glob("counter_*.db")}
    assert len(pids) == 2 and "1" not in pids, pids
