"""Downloading a finished batch's results: eight concurrent `GET /v1/batches/{id}/results`
of an N-job batch from an API process (the results are written to the store once, by the
first request, then sent from there), against eight concurrent rebuilds of the same JSONL
from the database, which is what every download cost before the results were stored."""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

import httpx
from sqlalchemy.orm import Session
from starlette.requests import Request

from aigc.settings import Settings
from aigc.storage import open_store
from api.routes.batches import result_chunks
from benchmarks.accept import echo_jsonl, post_batch
from benchmarks.report import comparison
from benchmarks.services import START_TIMEOUT_S, Services, job_stack
from benchmarks.throughput import RUN_TIMEOUT_S, wait_for_batch
from db.session import make_engine, make_session_factory

log = logging.getLogger(__name__)

BATCH_JOBS = 50_000
QUICK_BATCH_JOBS = 2_000
DOWNLOADERS = 8
DOWNLOAD_TIMEOUT_S = 600.0


def _finished_batch(client: httpx.Client, worker: Any, count: int) -> str:
    """An N-job echo batch run to the end by a real worker: the artifacts, rows and store
    layout are exactly what production leaves, at about a thousand jobs a second."""
    probe = post_batch(client, echo_jsonl(1, "probe"))
    wait_for_batch(client, probe["id"], worker, START_TIMEOUT_S)
    batch = post_batch(client, echo_jsonl(count))
    done = wait_for_batch(client, batch["id"], worker, RUN_TIMEOUT_S)
    if done["counts"]["succeeded"] != count:
        raise RuntimeError(f"results batch ended {done['status']}: {done['counts']}")
    return str(batch["id"])


def _concurrent_downloads(
    url: str, path: str, headers: dict[str, str]
) -> tuple[float, list[bytes]]:
    def download(_: int) -> bytes:
        with httpx.Client(base_url=url, timeout=DOWNLOAD_TIMEOUT_S, headers=headers) as client:
            return client.get(path).raise_for_status().content

    started = time.perf_counter()
    with ThreadPoolExecutor(DOWNLOADERS) as pool:
        bodies = list(pool.map(download, range(DOWNLOADERS)))
    return time.perf_counter() - started, bodies


def _concurrent_rebuilds(services: Services, url: str, batch_id: str) -> tuple[float, bytes]:
    """Eight threads each building the whole JSONL with the function the live path streams
    from, in this process (no HTTP, which only favours the baseline)."""
    settings = Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        artifact_dir=services.work_dir / "artifacts",
        public_url=url,  # the base the API process put in the artifact URLs
    )
    engine = make_engine(services.database_url)
    factory = make_session_factory(engine)
    store = open_store(settings)
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})

    def sessions() -> AbstractContextManager[Session]:
        return factory()

    def rebuild(_: int) -> bytes:
        chunks = result_chunks(sessions, request, settings, store, uuid.UUID(batch_id))
        return b"".join(chunks)

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(DOWNLOADERS) as pool:
            bodies = list(pool.map(rebuild, range(DOWNLOADERS)))
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    if len(set(bodies)) != 1:
        raise RuntimeError("the rebuilds differ")
    return seconds, bodies[0]


def run(services: Services, *, quick: bool) -> dict[str, Any]:
    count = QUICK_BATCH_JOBS if quick else BATCH_JOBS
    env = services.env(AIGC_PRELOAD_MODELS="false")
    log.info("results: %d-job echo batch, then %d concurrent downloads", count, DOWNLOADERS)
    with (
        job_stack(services, env) as stack,
        httpx.Client(
            base_url=stack.url, timeout=DOWNLOAD_TIMEOUT_S, headers=services.headers
        ) as client,
    ):
        url, worker = stack.url, stack.worker
        batch_id = _finished_batch(client, worker, count)
        path = f"/v1/batches/{batch_id}/results"
        first_s, first = _concurrent_downloads(url, path, services.headers)
        again_s, again = _concurrent_downloads(url, path, services.headers)
        log.info("results: baseline, %d concurrent rebuilds", DOWNLOADERS)
        baseline_s, rebuilt = _concurrent_rebuilds(services, url, batch_id)
    services.reset()
    if len({*first, *again}) != 1 or first[0] != rebuilt:
        raise RuntimeError("stored results differ between downloads or from a rebuild")

    size_mb = len(rebuilt) / 1e6
    return comparison(
        description=(
            f"{DOWNLOADERS} concurrent GET /v1/batches/{{id}}/results of a finished "
            f"{count:,}-job echo batch from an API process (1 uvicorn worker): the first "
            "request writes the JSONL to the store once (the others wait on it), then all "
            "are sent from the store; `seconds` is that first round, `seconds_warm` a "
            "second round served entirely from the store"
        ),
        figure={
            "jobs": count,
            "results_mb": size_mb,
            "seconds": first_s,
            "seconds_warm": again_s,
            "mb_per_s": DOWNLOADERS * size_mb / first_s,
            "mb_per_s_warm": DOWNLOADERS * size_mb / again_s,
            "ratio_warm": baseline_s / again_s,
        },
        baseline={
            "description": (
                f"{DOWNLOADERS} concurrent rebuilds of the same JSONL from PostgreSQL and the "
                "artifact store (api.routes.batches.result_chunks, what each download did "
                "before results were stored), in-process, no HTTP"
            ),
            "seconds": baseline_s,
            "mb_per_s": DOWNLOADERS * size_mb / baseline_s,
        },
        ratio=baseline_s / first_s,
        targets={"ratio": (">=", 4.0)},
    )
