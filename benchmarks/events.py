"""How soon a client learns of a worker's progress: from the progress report's write
(its job_events row, by the database clock) until a client following the job's server-sent
event stream has the event. Against the same jobs followed by polling GET /v1/jobs/{id}
every half second, what `--wait` and `aigc demo` did before streams existed."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from httpx_sse import connect_sse

from benchmarks.latency import summary_ms
from benchmarks.report import comparison
from benchmarks.services import START_TIMEOUT_S, Services, job_stack, wait_until

log = logging.getLogger(__name__)

JOBS, JOBS_QUICK = 10, 4
POLL_INTERVAL_S = 0.5
# Progress written every 0.1 s: several reports per job to time.
PROGRESS_INTERVAL_S = "0.1"
TEXT_JOB = {
    "kind": "text",
    "prompt": "The prospects of AIGC for content teams",
    "params": {"max_new_tokens": 256, "seed": 1},
}
TERMINAL = ("succeeded", "failed", "canceled")


def _now() -> datetime:
    return datetime.now(UTC)


def _streamed(client: httpx.Client) -> list[float]:
    """Seconds from each progress report's write to its arrival on the job's stream."""
    job_id = client.post("/v1/jobs", json=TEXT_JOB).raise_for_status().json()["id"]
    delays = []
    timeout = httpx.Timeout(10.0, read=60.0)
    with connect_sse(client, "GET", f"/v1/jobs/{job_id}/events", timeout=timeout) as source:
        for event in source.iter_sse():
            if event.event == "progress":
                at = datetime.fromisoformat(event.json()["at"])
                delays.append((_now() - at).total_seconds())
    return delays


def _polled(client: httpx.Client, engine: sa.Engine) -> list[float]:
    """Seconds from each progress report's write until a poll shows it."""
    job_id = client.post("/v1/jobs", json=TEXT_JOB).raise_for_status().json()["id"]
    seen: dict[int, datetime] = {}
    while True:
        job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] == "running" and job["progress"]:
            seen.setdefault(job["progress"]["done"], _now())
        if job["status"] in TERMINAL:
            break
        time.sleep(POLL_INTERVAL_S)
    with engine.connect() as conn:
        written = dict(
            conn.execute(
                sa.text(
                    "SELECT progress_done, created_at FROM job_events"
                    " WHERE job_id = :job_id AND type = 'progress'"
                ),
                {"job_id": job_id},
            ).all()
        )
    return [(at - written[done]).total_seconds() for done, at in seen.items() if done in written]


def run(services: Services, *, quick: bool) -> dict[str, Any]:
    count = JOBS_QUICK if quick else JOBS
    env = services.env(AIGC_PRELOAD_MODELS="true", AIGC_PROGRESS_INTERVAL_S=PROGRESS_INTERVAL_S)
    engine = sa.create_engine(services.database_url)
    try:
        with (
            job_stack(services, env) as stack,
            httpx.Client(base_url=stack.url, timeout=30.0, headers=services.headers) as client,
        ):
            probe = client.post("/v1/jobs", json=TEXT_JOB).raise_for_status().json()["id"]
            wait_until(
                lambda: client.get(f"/v1/jobs/{probe}").json()["status"] in TERMINAL,
                START_TIMEOUT_S,
                "events: the worker's first job",
                stack.worker,
            )
            log.info("events: %d text jobs followed by stream, then %d by polling", count, count)
            streamed = [delay for _ in range(count) for delay in _streamed(client)]
            polled = [delay for _ in range(count) for delay in _polled(client, engine)]
    finally:
        engine.dispose()
        services.reset()
    figure = summary_ms(streamed)
    baseline = summary_ms(polled)
    return comparison(
        description=(
            f"{count} tiny-text jobs of 256 tokens, progress written every "
            f"{PROGRESS_INTERVAL_S} s (API, 1 dispatcher, 1 worker): from each progress "
            "report's write (its job_events row's created_at, database clock) until the "
            "client following GET /v1/jobs/{id}/events has it"
        ),
        figure={"progress_events": len(streamed), **figure},
        baseline={
            "description": (
                f"the same jobs followed by polling GET /v1/jobs/{{id}} every "
                f"{POLL_INTERVAL_S} s: from each progress report's write until a poll shows it"
            ),
            "progress_reports_seen": len(polled),
            **baseline,
        },
        ratio=baseline["p50_ms"] / figure["p50_ms"],
        targets={"ratio": (">=", 2.0)},
    )
