"""Broker or database unreachable: the API answers at once, never hangs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from aigc.settings import Settings

CLOSED_PORT = 1  # nothing listens on port 1 on this machine


@pytest.mark.timeout(30)  # a hang fails the test instead of blocking the run
def test_submission_while_broker_unreachable_is_persisted_queued(
    app_client: Callable[[Settings], TestClient], settings: Settings, db_engine: sa.Engine
) -> None:
    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{CLOSED_PORT}/0"})
    with app_client(down) as client:
        response = client.post("/v1/jobs", json={"kind": "text", "prompt": "hello"})
        assert response.status_code == 202
        job_id = response.json()["id"]
        with db_engine.connect() as conn:
            status = conn.execute(
                sa.text("SELECT status FROM jobs WHERE id = :id"), {"id": job_id}
            ).scalar()
        assert status == "queued"
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["broker"].startswith("unreachable")
        assert ready.json()["checks"]["database"] == "ok"
        # Reads keep working.
        assert client.get(f"/v1/jobs/{job_id}").status_code == 200


@pytest.mark.timeout(30)
def test_database_unreachable_is_503_not_a_hang(
    app_client: Callable[[Settings], TestClient], settings: Settings
) -> None:
    down = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{CLOSED_PORT}/test"}
    )
    with app_client(down) as client:
        for method, path, body in [
            ("POST", "/v1/jobs", {"kind": "text", "prompt": "hello"}),
            ("GET", "/v1/jobs", None),
        ]:
            response = client.request(method, path, json=body)
            assert response.status_code == 503
            assert response.json()["error"]["type"] == "database_unavailable"
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("unreachable")
