"""Cancel: a queued job never runs; a running one stops within a step and frees its worker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app
from tests.conftest import TeamKey
from tests.live import isolated_broker, started_worker, wait_for_job


def _wait_for_progress(
    client: TestClient, job_id: str, *, done: int, timeout_s: float
) -> dict[str, Any]:
    """The job once its stored progress reaches `done` steps; fails the test after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if (job["progress"] or {}).get("done", 0) >= done:
            return job
        assert time.monotonic() < deadline, f"job {job_id} made no progress: {job}"
        time.sleep(0.02)


def test_canceled_queued_job_never_runs(
    team: TeamKey, settings: Settings, tiny_models: Path
) -> None:
    with (
        isolated_broker(settings) as isolated,
        TestClient(create_app(isolated), headers=team.headers) as client,
    ):
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
        assert final["progress"] is None
        # Canceling again is a conflict: it is already final.
        assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 409


def test_canceled_running_image_job_stops_within_a_step(
    team: TeamKey, settings: Settings, tiny_models: Path, artifact_dir: Path
) -> None:
    # 150 denoising steps at 1024x1024: about 0.2 s a step for the tiny model on this CPU,
    # half a minute in all, should the cancel not stop it.
    steps = 150
    with (
        isolated_broker(settings) as isolated,
        TestClient(create_app(isolated), headers=team.headers) as client,
    ):
        long_job = client.post(
            "/v1/jobs",
            json={
                "kind": "image",
                "prompt": "slow",
                "params": {"width": 1024, "height": 1024, "steps": steps, "seed": 1},
            },
        ).json()
        stored_before = sorted(artifact_dir.rglob(f"{long_job['id']}*"))
        # Progress stored at every step, so the cancel's answer says exactly where it was.
        with started_worker(
            isolated, tiny_models, kinds="text,image", AIGC_PROGRESS_INTERVAL_S="0"
        ):
            running = _wait_for_progress(client, long_job["id"], done=2, timeout_s=120)
            assert running["status"] == "running"
            assert running["progress"]["total"] == steps

            canceled = client.post(f"/v1/jobs/{long_job['id']}/cancel")
            assert canceled.status_code == 200
            done_at_cancel = canceled.json()["progress"]["done"]
            # The worker takes the next job: it is free again.
            follower = client.post(
                "/v1/jobs", json={"kind": "text", "model": "echo", "prompt": "next"}
            ).json()
            assert wait_for_job(client, follower["id"], timeout_s=120)["status"] == "succeeded"

        final = client.get(f"/v1/jobs/{long_job['id']}").json()
        assert final["status"] == "canceled"
        assert final["artifacts"] == []
        # The step in flight when the cancel committed is the last one: its end checks the
        # job's status before reporting, and the worker records where it stopped.
        stopped_at = final["progress"]["done"]
        assert done_at_cancel <= stopped_at <= done_at_cancel + 1 < steps
        assert final["progress"]["total"] == steps
        assert sorted(artifact_dir.rglob(f"{long_job['id']}*")) == stored_before == []
