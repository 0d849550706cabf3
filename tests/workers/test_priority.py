"""Priority tiers: a worker drains high before normal before low, so an interactive job
submitted while a large batch is queued starts before the batch's remaining jobs."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app
from tests.conftest import TeamKey
from tests.live import isolated_broker, started_worker, wait_for_batch, wait_for_job


def test_interactive_job_overtakes_a_queued_batch(
    team: TeamKey, settings: Settings, db_engine: sa.Engine, tiny_models: Path
) -> None:
    with (
        isolated_broker(settings) as isolated,
        TestClient(create_app(isolated), headers=team.headers) as client,
    ):
        jobs = [{"kind": "text", "model": "echo", "prompt": f"bulk {i}"} for i in range(64)]
        batch = client.post("/v1/batches", json={"jobs": jobs}).json()  # low tier by default
        normal = client.post("/v1/jobs", json={"kind": "text", "model": "echo", "prompt": "me"})
        urgent = client.post(
            "/v1/jobs",
            json={"kind": "text", "model": "echo", "prompt": "me first", "priority": "high"},
        )
        with started_worker(isolated, tiny_models):
            for job in (normal.json(), urgent.json()):
                assert wait_for_job(client, job["id"], timeout_s=120)["status"] == "succeeded"
            assert wait_for_batch(client, batch["id"])["status"] == "completed"

    with db_engine.connect() as conn:
        first_batch_start = conn.execute(
            sa.text("SELECT min(started_at) FROM jobs WHERE batch_id = :b"), {"b": batch["id"]}
        ).scalar_one()
        starts = dict(
            conn.execute(
                sa.text("SELECT prompt, started_at FROM jobs WHERE batch_id IS NULL")
            ).all()
        )
    assert starts["me first"] < starts["me"] < first_batch_start
