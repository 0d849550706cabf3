"""Helpers for tests that drive real API and worker processes over HTTP."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis

from aigc.cli.stack import spawn, stop_process
from aigc.settings import Settings
from aigc.vocab import FINAL_BATCH_STATUSES, FINAL_JOB_STATUSES


def stack_env(settings: Settings, model_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of real aigc processes on the test's servers and directories:
    offline, tiny models from `model_dir`, no preloading unless `extra` says otherwise."""
    env = dict(os.environ)
    env.update(
        AIGC_DATABASE_URL=settings.database_url or "",
        AIGC_REDIS_URL=settings.redis_url or "",
        AIGC_ARTIFACT_DIR=str(settings.artifact_dir),
        AIGC_VAR_DIR=str(settings.var_dir),
        AIGC_MODEL_DIR=str(model_dir),
        AIGC_PROFILE="offline",
        AIGC_PRELOAD_MODELS="false",
        HF_HUB_OFFLINE="1",
    )
    env.update(extra)
    return env


def _wait_for_status(
    client: httpx.Client, path: str, until: Iterable[str], timeout_s: float
) -> dict[str, Any]:
    """Poll `path` until its `status` is one of `until`; fail the test after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(path).raise_for_status().json()
        if body["status"] in until:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} still {body['status']} after {timeout_s}s")
        time.sleep(0.1)


def wait_for_job(
    client: httpx.Client,
    job_id: str,
    timeout_s: float = 120.0,
    until: Iterable[str] = FINAL_JOB_STATUSES,
) -> dict[str, Any]:
    return _wait_for_status(client, f"/v1/jobs/{job_id}", until, timeout_s)


def submit(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


@contextmanager
def isolated_broker(settings: Settings) -> Iterator[Settings]:
    """The settings on a Redis database of their own, emptied: no other worker of the test
    session takes their messages until the test starts one with `started_worker`."""
    base, _, db = (settings.redis_url or "").rpartition("/")
    url = f"{base}/{int(db) + 1}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield settings.model_copy(update={"redis_url": url})
    finally:
        client.flushdb()
        client.close()


@contextmanager
def started_worker(
    settings: Settings,
    model_dir: Path,
    kinds: str = "text",
    log_dir: Path | None = None,
    **extra_env: str,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `aigc worker` process on these settings, with the `aigc dispatcher` that feeds
    it, both stopped (warm shutdown) on exit. Their output goes to `<log_dir>/worker.log`
    and `<log_dir>/dispatcher.log` when a log directory is given."""
    env = stack_env(settings, model_dir, **extra_env)
    worker = spawn("worker", ["worker", "--queues", kinds], env, log_dir)
    dispatcher = spawn("dispatcher", ["dispatcher"], env, log_dir)
    try:
        yield worker
    finally:
        stop_process(dispatcher)
        stop_process(worker)


def wait_for_batch(
    client: httpx.Client,
    batch_id: str,
    timeout_s: float = 120.0,
    until: Iterable[str] = FINAL_BATCH_STATUSES,
) -> dict[str, Any]:
    return _wait_for_status(client, f"/v1/batches/{batch_id}", until, timeout_s)
