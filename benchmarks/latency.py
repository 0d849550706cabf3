"""Latency on an idle system: one echo job at a time through the API, the dispatcher and one
worker, each submitted once the previous one has finished; submit→running from the server's
own timestamps (`created_at` → `started_at`) and submit→succeeded as the client sees it.
Against a no-op Celery task's send→start on the same broker, one at a time."""

from __future__ import annotations

import logging
import statistics
import subprocess
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa

from benchmarks import noop_app
from benchmarks.report import comparison
from benchmarks.services import (
    START_TIMEOUT_S,
    Services,
    job_stack,
    noop_worker,
    wait_until,
)

log = logging.getLogger(__name__)

JOBS, JOBS_QUICK = 40, 15
WARMUP_JOBS = 3  # imports, pools and the broker connection warm on both sides
JOB_TIMEOUT_S = 30.0
# The client polls the job this often: the resolution of submit→succeeded. Finer would
# load the 2-core machine with requests the API answers while the job is under way.
POLL_INTERVAL_S = 0.01
# A pause after each job, so the next one meets an idle system (the worker has acknowledged
# its message and the dispatcher waits for a notification again), as in the baseline.
IDLE_GAP_S = 0.05
TERMINAL = ("succeeded", "failed", "canceled")
ECHO_JOB = {
    "kind": "text",
    "model": "echo",
    "prompt": "A one-line note on the prospects of AIGC.",
}


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (linear interpolation between the closest ranks)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p90, min and max in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "min_ms": min(ms),
        "max_ms": max(ms),
    }


def _elapsed_s(job: dict[str, Any], start: str, end: str) -> float:
    return (datetime.fromisoformat(job[end]) - datetime.fromisoformat(job[start])).total_seconds()


def _one_job(client: httpx.Client, worker: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Submit one echo job and wait for its end; the latencies it shows."""
    latest: dict[str, Any] = {}
    started = time.monotonic()
    job_id = client.post("/v1/jobs", json=ECHO_JOB).raise_for_status().json()["id"]

    def finished() -> bool:
        latest.update(client.get(f"/v1/jobs/{job_id}").raise_for_status().json())
        return latest["status"] in TERMINAL

    seen = wait_until(finished, JOB_TIMEOUT_S, f"job {job_id}", worker, POLL_INTERVAL_S)
    if latest["status"] != "succeeded":
        raise RuntimeError(f"latency: job {job_id} ended {latest['status']}: {latest['error']}")
    return {
        "id": job_id,
        "submit_to_running_s": _elapsed_s(latest, "created_at", "started_at"),
        "submit_to_finished_server_s": _elapsed_s(latest, "created_at", "finished_at"),
        "submit_to_succeeded_client_s": seen - started,
    }


def _dispatch_split(services: Services, job_ids: list[str]) -> list[tuple[float, float]]:
    """Each job's created_at → dispatched_at (the dispatcher) and dispatched_at → started_at
    (the broker and the worker's claim), from its row: the API does not show dispatched_at."""
    engine = sa.create_engine(services.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT EXTRACT(EPOCH FROM dispatched_at - created_at),"
                    " EXTRACT(EPOCH FROM started_at - dispatched_at)"
                    " FROM jobs WHERE id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"ids": job_ids},
            )
            return [(float(to_dispatch), float(to_start)) for to_dispatch, to_start in rows]
    finally:
        engine.dispose()


def _aigc_jobs(services: Services, count: int) -> list[dict[str, Any]]:
    env = services.env(AIGC_PRELOAD_MODELS="false")
    with (
        job_stack(services, env) as stack,
        httpx.Client(base_url=stack.url, timeout=30.0, headers=services.headers) as client,
    ):
        worker = stack.worker
        # The first job waits for the worker to start: it is no measure of latency.
        probe = client.post("/v1/jobs", json=ECHO_JOB).raise_for_status().json()["id"]
        wait_until(
            lambda: client.get(f"/v1/jobs/{probe}").json()["status"] in TERMINAL,
            START_TIMEOUT_S,
            "latency: the worker's first job",
            worker,
        )
        for _ in range(WARMUP_JOBS):
            _one_job(client, worker)
            time.sleep(IDLE_GAP_S)
        jobs = []
        for _ in range(count):
            jobs.append(_one_job(client, worker))
            time.sleep(IDLE_GAP_S)
    return jobs


def _noop_tasks(services: Services, count: int) -> list[float]:
    """Seconds from each send until the task body starts (its own time.time()), one task at
    a time."""
    with noop_worker(services) as noop:

        def one(timeout_s: float) -> float:
            sent = time.time()
            noop.app.send_task(noop_app.STAMP_TASK, queue=noop_app.QUEUE, producer=noop.producer)
            deadline = time.monotonic() + timeout_s
            while True:
                item = noop.redis.blpop([noop_app.STARTED_KEY], timeout=1)
                if item is not None:
                    return float(item[1]) - sent
                if noop.worker.poll() is not None:
                    raise RuntimeError(f"noop worker exited with {noop.worker.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError("latency: a no-op task did not start")

        one(START_TIMEOUT_S)  # the worker's start
        for _ in range(WARMUP_JOBS):
            one(JOB_TIMEOUT_S)
            time.sleep(IDLE_GAP_S)
        latencies = []
        for _ in range(count):
            latencies.append(one(JOB_TIMEOUT_S))
            time.sleep(IDLE_GAP_S)
        return latencies


def run(services: Services, *, quick: bool) -> dict[str, Any]:
    count = JOBS_QUICK if quick else JOBS
    log.info("latency: %d echo jobs one at a time, 1 dispatcher, 1 worker", count)
    jobs = _aigc_jobs(services, count)
    split = _dispatch_split(services, [job["id"] for job in jobs])
    services.reset()
    log.info("latency: baseline, %d no-op Celery tasks one at a time", count)
    baseline = _noop_tasks(services, count)
    services.reset()

    running = summary_ms([job["submit_to_running_s"] for job in jobs])
    finished = summary_ms([job["submit_to_finished_server_s"] for job in jobs])
    succeeded = summary_ms([job["submit_to_succeeded_client_s"] for job in jobs])
    baseline_ms = summary_ms(baseline)
    return comparison(
        description=(
            f"{count} echo jobs, one at a time on an idle system (API, 1 dispatcher, 1 worker "
            "--queues text, no model preload), each submitted once the previous one ended: "
            "submit→running from the job's created_at → started_at (server clock), split at "
            "its dispatched_at (read from its row); "
            "submit→succeeded from before POST /v1/jobs until GET /v1/jobs/{id} shows it "
            f"(polled every {POLL_INTERVAL_S * 1000:g} ms)"
        ),
        figure={
            "jobs": count,
            "submit_to_running": running,
            "submit_to_dispatched": summary_ms([to_dispatch for to_dispatch, _ in split]),
            "dispatched_to_running": summary_ms([to_start for _, to_start in split]),
            "submit_to_finished_server": finished,
            "submit_to_succeeded_client": succeeded,
        },
        baseline={
            "description": (
                "a minimal Celery app (benchmarks/noop_app.py) on the same Redis: a no-op "
                "task that pushes time.time() at its start to a Redis list; 1 worker process "
                "with aigc's options and delivery settings; from before send_task to that "
                "start, one task at a time"
            ),
            "tasks": count,
            "send_to_start": baseline_ms,
        },
        ratio=baseline_ms["p50_ms"] / running["p50_ms"],
        targets={"submit_to_running_p50_ms": ("<=", 100.0)},
        values={"submit_to_running_p50_ms": running["p50_ms"]},
    )
