"""Fair share on the real path: API, dispatcher and worker processes, PostgreSQL and Redis.
What is asserted is the order work ran in, read back from the jobs' own timestamps."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app
from tests.conftest import TeamKey, make_team_key
from tests.live import isolated_broker, started_worker, wait_for_batch


def _jobs(n: int, model: str, **params: Any) -> list[dict[str, Any]]:
    return [
        {"kind": "text", "model": model, "prompt": f"job {i}", "params": params} for i in range(n)
    ]


def _submit(client: TestClient, key: TeamKey, jobs: list[dict[str, Any]]) -> str:
    response = client.post("/v1/batches", json={"jobs": jobs}, headers=key.headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _succeeded(client: TestClient, key: TeamKey, batch_id: str) -> int:
    batch = client.get(f"/v1/batches/{batch_id}", headers=key.headers).json()
    return int(batch["counts"]["succeeded"])


def _wait(client: TestClient, key: TeamKey, batch_id: str) -> dict[str, Any]:
    client.headers.update(key.headers)
    return wait_for_batch(client, batch_id, timeout_s=180)


def test_a_backlog_does_not_hold_another_teams_jobs(
    team: TeamKey, other_team: TeamKey, settings: Settings, db_engine: sa.Engine, tiny_models: Path
) -> None:
    backlog_jobs = 160
    with (
        isolated_broker(settings) as isolated,
        TestClient(create_app(isolated)) as client,
        started_worker(isolated, tiny_models, AIGC_CHUNK_SIZES='{"text": 4}'),
    ):
        backlog = _submit(client, team, _jobs(backlog_jobs, "tiny-text", max_new_tokens=4))
        deadline = time.monotonic() + 120
        while _succeeded(client, team, backlog) < 8:  # the backlog is being worked through
            assert time.monotonic() < deadline
            time.sleep(0.05)
        small = _submit(client, other_team, _jobs(8, "tiny-text", max_new_tokens=4))
        assert _wait(client, other_team, small)["status"] == "completed"
        backlog_left = backlog_jobs - _succeeded(client, team, backlog)

    with db_engine.connect() as conn:
        small_started, small_finished = conn.execute(
            sa.text("SELECT min(created_at), max(finished_at) FROM jobs WHERE batch_id = :b"),
            {"b": uuid.UUID(small)},
        ).one()
        backlog_meanwhile = conn.execute(
            sa.text(
                "SELECT count(*) FROM jobs WHERE batch_id = :b "
                "AND finished_at > :start AND finished_at <= :end"
            ),
            {"b": uuid.UUID(backlog), "start": small_started, "end": small_finished},
        ).scalar_one()
    # While the small batch's 2 chunks ran, the backlog ran at most the chunk in the worker's
    # hands, the window sent before the small batch came, and one chunk between its two.
    assert backlog_meanwhile <= 4 * 4
    assert backlog_left > backlog_jobs / 2


def test_backlogged_teams_share_the_worker_by_weight(
    settings: Settings, db_engine: sa.Engine, tiny_models: Path
) -> None:
    heavy = make_team_key(db_engine, "e2e-weight-three", weight=3)
    light = make_team_key(db_engine, "e2e-weight-one", weight=1)
    with (
        isolated_broker(settings) as isolated,
        TestClient(create_app(isolated)) as client,
    ):
        # Both backlogs are in before any worker runs.
        batches = {key.team_id: _submit(client, key, _jobs(200, "echo")) for key in (heavy, light)}
        with started_worker(isolated, tiny_models, AIGC_CHUNK_SIZES='{"echo": 2}'):
            for key in (heavy, light):
                assert _wait(client, key, batches[key.team_id])["status"] == "completed"

    with db_engine.connect() as conn:
        first_run = conn.execute(
            sa.text(
                "SELECT team_id FROM jobs WHERE team_id IN (:h, :l) "
                "ORDER BY started_at, id LIMIT 160"
            ),
            {"h": heavy.team_id, "l": light.team_id},
        ).scalars()
        teams = list(first_run)
    ratio = teams.count(heavy.team_id) / teams.count(light.team_id)
    assert 2.4 <= ratio <= 3.6, f"{teams.count(heavy.team_id)} : {teams.count(light.team_id)}"
