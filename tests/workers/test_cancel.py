"""A job canceled while queued is never run, even though its message is still delivered."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app
from tests.live import isolated_broker, started_worker, wait_for_job


def test_canceled_queued_job_never_runs(settings: Settings, tiny_models: Path) -> None:
    with isolated_broker(settings) as isolated, TestClient(create_app(isolated)) as client:
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
        with started_worker(isolated, tiny_models):
            # TestClient is an httpx.Client, so the polling helper works on it.
            assert wait_for_job(client, follower["id"], timeout_s=120)["status"] == "succeeded"

        final = client.get(f"/v1/jobs/{job['id']}").json()
        assert final["status"] == "canceled"
        assert final["attempts"] == 0
        assert final["started_at"] is None
        assert final["worker"] is None
        assert final["artifacts"] == []
        # Canceling again is a conflict: it is already final.
        assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 409
