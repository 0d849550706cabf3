"""Accepting a batch: one `POST /v1/batches` of N echo jobs to an API process, against a
loop that inserts, commits and publishes one job at a time."""

from __future__ import annotations

import json
import logging
import statistics
import time
import uuid
from typing import Any

import httpx
from celery import Celery
from sqlalchemy.orm import Session

from aigc.settings import Settings
from benchmarks.report import comparison
from benchmarks.services import Services, api_process
from db.jobs import create_job
from db.session import make_engine, make_session_factory
from models.params import TextParams
from workers.celery_app import create_celery_app
from workers.dispatch import JobRef, publish_job

log = logging.getLogger(__name__)

BATCH_JOBS = 10_000
REPEATS = 5  # the median of five uploads: a slow outlier on a shared machine moves nothing
WARMUP_JOBS = 100
# What the API stores for an echo job with no params: the text defaults.
ECHO_PARAMS = TextParams().model_dump(mode="json")


def echo_jsonl(count: int, prefix: str = "job") -> bytes:
    """A JSONL body of `count` echo jobs, each with its custom_id."""
    return "".join(
        json.dumps(
            {
                "custom_id": f"{prefix}-{n}",
                "kind": "text",
                "model": "echo",
                "prompt": f"Prompt {n}: a short article on the prospects of AIGC.",
            }
        )
        + "\n"
        for n in range(count)
    ).encode()


def post_batch(client: httpx.Client, body: bytes) -> dict[str, Any]:
    response = client.post(
        "/v1/batches", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def _accept_over_http(services: Services) -> list[float]:
    body = echo_jsonl(BATCH_JOBS)
    with (
        api_process(services, services.env()) as url,
        httpx.Client(base_url=url, timeout=300.0, headers=services.headers) as client,
    ):
        # The first request pays lazy imports and opens the pools; a client's later ones don't.
        post_batch(client, echo_jsonl(WARMUP_JOBS, "warmup"))
        seconds = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            batch = post_batch(client, body)
            seconds.append(time.perf_counter() - started)
            assert batch["counts"]["total"] == BATCH_JOBS
    return seconds


def _one_by_one(services: Services, count: int) -> float:
    """The naive path: for each job an INSERT, a COMMIT and a publish, as `POST /v1/jobs`
    does, minus HTTP and validation (which only favours the baseline)."""
    settings = Settings(database_url=services.database_url, redis_url=services.redis_url)
    engine = make_engine(services.database_url)
    celery = create_celery_app(settings)
    try:
        with make_session_factory(engine)() as session:
            for n in range(WARMUP_JOBS):
                _insert_and_publish(session, celery, services.team_id, n)
            started = time.perf_counter()
            for n in range(count):
                _insert_and_publish(session, celery, services.team_id, n)
            return time.perf_counter() - started
    finally:
        celery.close()
        engine.dispose()


def _insert_and_publish(session: Session, celery: Celery, team_id: uuid.UUID, n: int) -> None:
    job = create_job(
        session,
        kind="text",
        model="echo",
        prompt=f"Prompt {n}: a short article on the prospects of AIGC.",
        params=ECHO_PARAMS,
        metadata={},
        team_id=team_id,
    )
    session.commit()
    publish_job(celery, JobRef(job.id, job.kind, job.model, job.priority))


def run(services: Services, *, quick: bool) -> dict[str, Any]:
    baseline_jobs = 1_000 if quick else BATCH_JOBS
    log.info("accept: %d-job batch over HTTP, %d times", BATCH_JOBS, REPEATS)
    seconds = _accept_over_http(services)
    services.reset()
    log.info("accept: baseline, %d jobs one by one", baseline_jobs)
    baseline_s = _one_by_one(services, baseline_jobs)
    services.reset()

    median_s = statistics.median(seconds)
    rate = BATCH_JOBS / median_s
    baseline_rate = baseline_jobs / baseline_s
    return comparison(
        description=(
            f"POST /v1/batches with {BATCH_JOBS:,} echo jobs as JSONL to an API process "
            "(validate, COPY into PostgreSQL, publish in chunks): median of "
            f"{REPEATS} uploads"
        ),
        figure={
            "jobs": BATCH_JOBS,
            "seconds": median_s,
            "seconds_each_run": seconds,
            "jobs_per_s": rate,
        },
        baseline={
            "description": (
                "db.jobs.create_job + commit + workers.dispatch.publish_job, one job at a "
                "time, in-process (no HTTP)"
            ),
            "jobs": baseline_jobs,
            "seconds": baseline_s,
            "jobs_per_s": baseline_rate,
            f"seconds_for_{BATCH_JOBS}_jobs": BATCH_JOBS / baseline_rate,
        },
        ratio=rate / baseline_rate,
        targets={"ratio": (">=", 20.0), "seconds": ("<", 1.0)},
        values={"seconds": median_s},
    )
