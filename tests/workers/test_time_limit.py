"""A job past its kind's time limit fails with `timeout` at its next step, and the worker
goes on serving."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app
from tests.conftest import TeamKey
from tests.live import isolated_broker, started_worker, wait_for_job


def test_job_past_its_time_limit_fails_with_timeout(
    team: TeamKey, settings: Settings, tiny_models: Path
) -> None:
    limits = json.dumps({"text": 60, "image": 1, "audio": 60})
    with (
        isolated_broker(settings) as isolated,
        TestClient(create_app(isolated), headers=team.headers) as client,
    ):
        # 150 steps at 512x512 take the tiny model several seconds here, past the 1 s limit.
        slow = client.post(
            "/v1/jobs",
            json={
                "kind": "image",
                "prompt": "slow",
                "params": {"width": 512, "height": 512, "steps": 150},
            },
        ).json()
        after = client.post(
            "/v1/jobs", json={"kind": "text", "model": "echo", "prompt": "next"}
        ).json()
        with started_worker(isolated, tiny_models, kinds="text,image", AIGC_TIME_LIMITS_S=limits):
            failed = wait_for_job(client, slow["id"], timeout_s=120)
            assert failed["status"] == "failed"
            assert failed["error"]["code"] == "timeout"
            assert failed["artifacts"] == []
            # Stopped between steps, well before the last.
            assert failed["progress"] is None or failed["progress"]["done"] < 150
            assert wait_for_job(client, after["id"], timeout_s=60)["status"] == "succeeded"
