"""Accepting a batch: one `POST /v1/batches` of N echo jobs (10,000 and 50,000) to an API
process, against a loop that inserts and commits one job at a time. The API publishes
nothing: a job is accepted once its row is committed (the dispatcher sends it on later)."""

from __future__ import annotations

import json
import logging
import statistics
import time
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

from benchmarks.report import comparison
from benchmarks.services import Services, api_process
from db.jobs import create_job
from db.session import make_engine, make_session_factory
from models.params import TextParams

log = logging.getLogger(__name__)

BATCH_JOBS = 10_000
REPEATS = 5  # the median of five uploads: a slow outlier on a shared machine moves nothing
LARGE_BATCH_JOBS = 50_000  # the largest batch the API takes (max_batch_jobs)
LARGE_REPEATS, LARGE_REPEATS_QUICK = 3, 1
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


def _vacuum(database_url: str) -> None:
    """What autovacuum would do after an upload, done before the next one is timed: on this
    2-core machine an autovacuum of the previous batch's rows would otherwise take one of
    the two cores in the middle of the measured upload (the rows stay: later uploads go
    into a growing table)."""
    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) jobs")
    finally:
        engine.dispose()


def _uploads(client: httpx.Client, services: Services, count: int, repeats: int) -> list[float]:
    """Seconds of each of `repeats` uploads of a `count`-job batch, each on a vacuumed
    table holding the earlier ones' rows."""
    body = echo_jsonl(count)
    seconds = []
    for _ in range(repeats):
        _vacuum(services.database_url)
        started = time.perf_counter()
        batch = post_batch(client, body)
        seconds.append(time.perf_counter() - started)
        if batch["counts"]["total"] != count:
            raise RuntimeError(f"accept: a {count}-job batch came back with {batch['counts']}")
    return seconds


def _accept_over_http(services: Services, large_repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of each 10k upload and of each 50k upload."""
    with (
        api_process(services, services.env()) as url,
        httpx.Client(base_url=url, timeout=300.0, headers=services.headers) as client,
    ):
        # The first request pays lazy imports and opens the pools; a client's later ones don't.
        post_batch(client, echo_jsonl(WARMUP_JOBS, "warmup"))
        seconds = _uploads(client, services, BATCH_JOBS, REPEATS)
        # Each series starts on empty tables: the 50k uploads do not pay for the 10k's rows.
        services.reset()
        large_seconds = _uploads(client, services, LARGE_BATCH_JOBS, large_repeats)
    return seconds, large_seconds


def _one_by_one(services: Services, count: int) -> float:
    """The naive path: for each job an INSERT (with its NOTIFY) and a COMMIT, as
    `POST /v1/jobs` does, minus HTTP and validation (which only favours the baseline)."""
    engine = make_engine(services.database_url)
    try:
        with make_session_factory(engine)() as session:
            for n in range(WARMUP_JOBS):
                _insert(session, services.team_id, n)
            started = time.perf_counter()
            for n in range(count):
                _insert(session, services.team_id, n)
            return time.perf_counter() - started
    finally:
        engine.dispose()


def _insert(session: Session, team_id: uuid.UUID, n: int) -> None:
    create_job(
        session,
        kind="text",
        model="echo",
        prompt=f"Prompt {n}: a short article on the prospects of AIGC.",
        params=ECHO_PARAMS,
        metadata={},
        team_id=team_id,
    )
    session.commit()


def run(services: Services, *, quick: bool) -> dict[str, Any]:
    baseline_jobs = 1_000 if quick else BATCH_JOBS
    large_repeats = LARGE_REPEATS_QUICK if quick else LARGE_REPEATS
    log.info(
        "accept: %d-job batch over HTTP %d times, %d-job batch %d times",
        BATCH_JOBS,
        REPEATS,
        LARGE_BATCH_JOBS,
        large_repeats,
    )
    seconds, large_seconds = _accept_over_http(services, large_repeats)
    services.reset()
    log.info("accept: baseline, %d jobs one by one", baseline_jobs)
    baseline_s = _one_by_one(services, baseline_jobs)
    services.reset()

    median_s, large_median_s = statistics.median(seconds), statistics.median(large_seconds)
    rate = BATCH_JOBS / median_s
    baseline_rate = baseline_jobs / baseline_s
    return comparison(
        description=(
            f"POST /v1/batches with {BATCH_JOBS:,} and with {LARGE_BATCH_JOBS:,} echo jobs as "
            "JSONL to an API process (validate, COPY into PostgreSQL, NOTIFY the dispatcher; "
            f"nothing published): median of {REPEATS} and of {large_repeats} uploads, each "
            "into the table holding the earlier ones' rows, vacuumed before it"
        ),
        figure={
            "jobs": BATCH_JOBS,
            "seconds": median_s,
            "seconds_each_run": seconds,
            "jobs_per_s": rate,
            "large_jobs": LARGE_BATCH_JOBS,
            "large_seconds": large_median_s,
            "large_seconds_each_run": large_seconds,
            "large_jobs_per_s": LARGE_BATCH_JOBS / large_median_s,
        },
        baseline={
            "description": (
                "db.jobs.create_job (INSERT + NOTIFY) + commit, one job at a time, "
                "in-process (no HTTP)"
            ),
            "jobs": baseline_jobs,
            "seconds": baseline_s,
            "jobs_per_s": baseline_rate,
            f"seconds_for_{BATCH_JOBS}_jobs": BATCH_JOBS / baseline_rate,
        },
        ratio=rate / baseline_rate,
        targets={
            "ratio": (">=", 20.0),
            "seconds": ("<=", 0.5),
            "large_seconds": ("<=", 2.5),
        },
        values={"seconds": median_s, "large_seconds": large_median_s},
    )
