"""A job canceled while queued is never run, even though its message is still delivered."""

from __future__ import annotations

import os
from pathlib import Path

import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient

from aigc.cli.stack import spawn, stop_process
from aigc.settings import Settings
from api.main import create_app
from tests.live import wait_for_job


def isolated_redis_url(settings: Settings) -> str:
    base, _, db = (settings.redis_url or "").rpartition("/")
    url = f"{base}/{int(db) + 1}"
    redis.Redis.from_url(url).flushdb()
    return url


def test_canceled_queued_job_never_runs(
    settings: Settings, db_engine: sa.Engine, tiny_models: Path
) -> None:
    # A Redis database of its own: no other worker of the test session may take the message.
    settings = settings.model_copy(update={"redis_url": isolated_redis_url(settings)})
    with TestClient(create_app(settings)) as client:
        job = client.post(
            "/v1/jobs", json={"kind": "text", "model": "echo", "prompt": "never"}
        ).json()
        canceled = client.post(f"/v1/jobs/{job['id']}/cancel")
        assert canceled.status_code == 200
        assert canceled.json()["status"] == "canceled"
        # Submitted after the canceled one, so a worker that serves it has seen the first.
        follower = client.post(
            "/v1/jobs", json={"kind": "text", "model": "echo", "prompt": "runs"}
        ).json()

        env = dict(os.environ)
        env.update(
            AIGC_DATABASE_URL=settings.database_url or "",
            AIGC_REDIS_URL=settings.redis_url or "",
            AIGC_ARTIFACT_DIR=str(settings.artifact_dir),
            AIGC_MODEL_DIR=str(tiny_models),
            AIGC_PRELOAD_MODELS="false",
        )
        worker = spawn("worker", ["worker", "--queues", "text"], env)
        try:
            # TestClient is an httpx.Client, so the polling helper works on it.
            assert wait_for_job(client, follower["id"], timeout_s=120)["status"] == "succeeded"
        finally:
            stop_process(worker)

        final = client.get(f"/v1/jobs/{job['id']}").json()
    assert final["status"] == "canceled"
    assert final["attempts"] == 0
    assert final["started_at"] is None
    assert final["worker"] is None
    assert final["artifacts"] == []
    # Canceling again is a conflict: it is already final.
    with TestClient(create_app(settings)) as client:
        assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 409
