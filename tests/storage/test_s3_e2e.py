"""Artifacts across hosts: a real worker process and a real API process that share no
directory (each has its own artifact and var directories) and meet only in the S3 bucket
and the database. The client fetches the bytes from presigned URLs, never through the
API."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from aigc.cli.stack import spawn, stop_process, wait_for_http
from aigc.settings import Settings
from tests.conftest import TeamKey
from tests.live import isolated_broker, started_worker, submit, wait_for_batch, wait_for_job
from tests.storage.conftest import S3Server

PROMPT = "made on one host, served from the bucket"


def _files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


@pytest.mark.timeout(240)
def test_worker_and_api_share_only_the_bucket(
    s3_settings: Settings,
    s3_server: S3Server,
    team: TeamKey,
    tmp_path: Path,
    free_port: Callable[[], int],
) -> None:
    worker_home, api_home, logs = tmp_path / "worker", tmp_path / "api", tmp_path / "logs"
    with isolated_broker(s3_settings) as settings:
        store_env = s3_server.env(settings)
        worker_settings = settings.model_copy(update={"artifact_dir": worker_home / "artifacts"})
        port = free_port()
        api_env = dict(
            os.environ,
            AIGC_DATABASE_URL=settings.database_url or "",
            AIGC_REDIS_URL=settings.redis_url or "",
            AIGC_ARTIFACT_DIR=str(api_home / "artifacts"),
            AIGC_VAR_DIR=str(api_home / "var"),
            AIGC_PROFILE="offline",
            HF_HUB_OFFLINE="1",
            **store_env,
        )
        with started_worker(
            worker_settings,
            worker_home / "models",
            log_dir=logs,
            AIGC_VAR_DIR=str(worker_home / "var"),
            **store_env,
        ):
            api = spawn("api", ["api", "--host", "127.0.0.1", "--port", str(port)], api_env, logs)
            try:
                api_url = f"http://127.0.0.1:{port}"
                wait_for_http(f"{api_url}/healthz", 60, api)
                with httpx.Client(base_url=api_url, timeout=30, headers=team.headers) as client:
                    _check_job(client, s3_settings)
                    _check_batch_results(client)
                    assert client.get("/readyz").json()["checks"]["store"] == "ok"
            finally:
                stop_process(api)
    # Neither process wrote artifact bytes to a directory of its own.
    assert _files_under(worker_home / "artifacts") == []
    assert _files_under(api_home / "artifacts") == []


def _check_job(client: httpx.Client, settings: Settings) -> None:
    job = submit(client, kind="text", model="echo", prompt=PROMPT)
    done = wait_for_job(client, job["id"], timeout_s=180)
    assert done["status"] == "succeeded", done["error"]
    [artifact] = done["artifacts"]
    assert artifact["url"].startswith(f"{settings.s3_endpoint_url}/")
    fetched = httpx.get(artifact["url"])  # from the bucket, with no API key
    assert fetched.status_code == 200
    assert fetched.content.decode() == PROMPT
    assert hashlib.sha256(fetched.content).hexdigest() == artifact["sha256"]
    assert len(fetched.content) == artifact["bytes"]
    route = client.get(f"/v1/artifacts/{artifact['id']}/content", follow_redirects=False)
    assert route.status_code == 307
    assert httpx.get(route.headers["location"]).content == fetched.content


def _check_batch_results(client: httpx.Client) -> None:
    jobs = [{"kind": "text", "model": "echo", "prompt": f"line {n}"} for n in range(3)]
    batch = client.post("/v1/batches", json={"jobs": jobs}).raise_for_status().json()
    assert wait_for_batch(client, batch["id"], timeout_s=120)["status"] == "completed"
    route = client.get(f"/v1/batches/{batch['id']}/results", follow_redirects=False)
    assert route.status_code == 307  # stored once in the bucket, served from there
    lines = [json.loads(line) for line in httpx.get(route.headers["location"]).text.splitlines()]
    # The API read each text artifact the worker wrote, from the bucket.
    assert [line["artifacts"][0]["text"] for line in lines] == [f"line {n}" for n in range(3)]
