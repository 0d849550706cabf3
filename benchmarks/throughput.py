"""End-to-end throughput: N echo jobs as one batch through the API, the dispatcher, the
broker and one worker process until all succeeded, against N no-op Celery tasks through one
worker process on the same broker."""

from __future__ import annotations

import logging
import subprocess
import time
from datetime import datetime
from typing import Any

import httpx

from benchmarks import noop_app
from benchmarks.accept import echo_jsonl, post_batch
from benchmarks.report import comparison
from benchmarks.services import (
    START_TIMEOUT_S,
    Services,
    job_stack,
    noop_worker,
    wait_until,
)

log = logging.getLogger(__name__)

RUN_TIMEOUT_S = 600.0
POLL_INTERVAL_S = 0.2  # a batch poll is a GROUP BY over its jobs: not every few ms


def _batch(client: httpx.Client, batch_id: str) -> dict[str, Any]:
    return client.get(f"/v1/batches/{batch_id}").raise_for_status().json()  # type: ignore[no-any-return]


def wait_for_batch(
    client: httpx.Client, batch_id: str, worker: subprocess.Popen[bytes], timeout_s: float
) -> dict[str, Any]:
    latest: dict[str, Any] = {}

    def finished() -> bool:
        latest.update(_batch(client, batch_id))
        counts = latest["counts"]
        return counts["succeeded"] + counts["failed"] + counts["canceled"] == counts["total"]

    wait_until(finished, timeout_s, f"batch {batch_id}", worker, POLL_INTERVAL_S)
    return latest


def _aigc_jobs(services: Services, count: int) -> dict[str, Any]:
    # Echo jobs need no model: nothing to preload, the worker takes jobs at once.
    env = services.env(AIGC_PRELOAD_MODELS="false")
    with (
        job_stack(services, env) as stack,
        httpx.Client(base_url=stack.url, timeout=120.0, headers=services.headers) as client,
    ):
        worker = stack.worker
        # Ready once it has run a job: imports, broker connection and database pool are warm.
        probe = post_batch(client, echo_jsonl(1, "probe"))
        wait_for_batch(client, probe["id"], worker, START_TIMEOUT_S)
        body = echo_jsonl(count)
        started = time.perf_counter()
        batch = post_batch(client, body)
        done = wait_for_batch(client, batch["id"], worker, RUN_TIMEOUT_S)
        seconds = time.perf_counter() - started
    if done["counts"]["succeeded"] != count:
        raise RuntimeError(f"throughput batch ended {done['status']}: {done['counts']}")
    server_s = (
        datetime.fromisoformat(done["finished_at"]) - datetime.fromisoformat(done["created_at"])
    ).total_seconds()
    return {"seconds": seconds, "server_seconds": server_s}


def _noop_tasks(services: Services, count: int) -> float:
    with noop_worker(services) as noop:

        def send(n: int) -> None:
            for _ in range(n):
                noop.app.send_task(noop_app.NOOP_TASK, queue=noop_app.QUEUE, producer=noop.producer)

        def done(n: int) -> bool:
            return int(noop.redis.get(noop_app.COUNTER_KEY) or 0) >= n

        send(1)
        wait_until(lambda: done(1), START_TIMEOUT_S, "noop worker start", noop.worker)
        noop.redis.set(noop_app.COUNTER_KEY, 0)
        started = time.perf_counter()
        send(count)
        finished = wait_until(lambda: done(count), RUN_TIMEOUT_S, "noop tasks", noop.worker, 0.01)
        return finished - started


def run(services: Services, *, quick: bool) -> dict[str, Any]:
    count = 1_000 if quick else 5_000
    log.info("throughput: %d echo jobs as one batch, 1 worker", count)
    ours = _aigc_jobs(services, count)
    services.reset()
    log.info("throughput: baseline, %d no-op Celery tasks, 1 worker", count)
    baseline_s = _noop_tasks(services, count)
    services.reset()

    rate, baseline_rate = count / ours["seconds"], count / baseline_s
    return comparison(
        description=(
            f"{count:,} echo jobs as one JSONL batch: from POST /v1/batches until "
            "GET /v1/batches/{id} counts all succeeded; 1 dispatcher process and 1 worker "
            "process (aigc worker --queues text, solo pool)"
        ),
        figure={
            "jobs": count,
            "seconds": ours["seconds"],
            "jobs_per_s": rate,
            "server_seconds_created_to_finished": ours["server_seconds"],
        },
        baseline={
            "description": (
                "a minimal Celery app (benchmarks/noop_app.py): one no-op task per job that "
                "increments a Redis counter, no result backend; 1 worker process with the "
                "options and delivery settings of aigc's (solo pool, acks_late, prefetch 1, "
                "task events); from the first send until the counter reaches N"
            ),
            "tasks": count,
            "seconds": baseline_s,
            "tasks_per_s": baseline_rate,
        },
        ratio=rate / baseline_rate,
        targets={"ratio": (">=", 2.0)},
    )
