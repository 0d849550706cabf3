"""Idempotency-Key on POST /v1/jobs and POST /v1/batches: a retried request returns the
first response and creates nothing new."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app
from tests.conftest import TeamKey, count_jobs

JOB = {"kind": "text", "model": "echo", "prompt": "once"}


def test_retried_job_submission_returns_the_first_response(
    client: TestClient, db_engine: sa.Engine
) -> None:
    first = client.post("/v1/jobs", json=JOB, headers={"Idempotency-Key": "k-1"})
    again = client.post("/v1/jobs", json=JOB, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert count_jobs(db_engine) == 1
    # Another key is another job.
    assert (
        client.post("/v1/jobs", json=JOB, headers={"Idempotency-Key": "k-2"}).json()["id"]
        != first.json()["id"]
    )
    assert count_jobs(db_engine) == 2


def test_same_key_with_another_body_is_422(client: TestClient, db_engine: sa.Engine) -> None:
    client.post("/v1/jobs", json=JOB, headers={"Idempotency-Key": "k"})
    other = client.post(
        "/v1/jobs", json={**JOB, "prompt": "twice"}, headers={"Idempotency-Key": "k"}
    )
    assert other.status_code == 422
    assert other.json()["error"]["type"] == "idempotency_key_reused"
    assert count_jobs(db_engine) == 1


def test_concurrent_retries_create_one_job(
    settings: Settings, db_engine: sa.Engine, team: TeamKey
) -> None:
    app = create_app(settings)

    def submit(_: int) -> str:
        with TestClient(app, headers=team.headers) as client:
            response = client.post("/v1/jobs", json=JOB, headers={"Idempotency-Key": "race"})
            assert response.status_code == 202, response.text
            return str(response.json()["id"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = set(pool.map(submit, range(6)))
    assert len(ids) == 1
    assert count_jobs(db_engine) == 1


def test_retried_batch_submission_returns_the_first_batch(
    client: TestClient, db_engine: sa.Engine
) -> None:
    body = {"jobs": [JOB] * 5}
    first = client.post("/v1/batches", json=body, headers={"Idempotency-Key": "b-1"})
    again = client.post("/v1/batches", json=body, headers={"Idempotency-Key": "b-1"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert count_jobs(db_engine) == 5
    changed = client.post(
        "/v1/batches", json={"jobs": [JOB] * 6}, headers={"Idempotency-Key": "b-1"}
    )
    assert changed.status_code == 422
    assert count_jobs(db_engine) == 5
