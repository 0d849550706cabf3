"""Submitting and validating batches over HTTP (no worker running)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient

from aigc.settings import Settings
from tests.conftest import count_jobs, waiting_jobs


def _jsonl(lines: list[dict[str, object] | str]) -> bytes:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode()


def test_json_batch_is_stored_waiting_for_the_dispatcher(
    client: TestClient, settings: Settings, db_engine: sa.Engine
) -> None:
    jobs = [{"kind": "text", "prompt": f"p{i}"} for i in range(40)]
    jobs += [{"kind": "image", "prompt": "a cat", "params": {"steps": 1}} for _ in range(6)]
    response = client.post(
        "/v1/batches", json={"jobs": jobs, "metadata": {"team": "x"}, "priority": "low"}
    )
    assert response.status_code == 202, response.text
    batch = response.json()
    assert response.headers["location"] == f"/v1/batches/{batch['id']}"
    assert batch["status"] == "queued"
    assert batch["counts"] == {
        "total": 46,
        "queued": 46,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "canceled": 0,
        "blocked": 0,
    }
    assert batch["priority"] == "low" and batch["metadata"] == {"team": "x"}
    assert count_jobs(db_engine) == 46
    # All wait in PostgreSQL for the dispatcher: accepting published nothing.
    assert redis.Redis.from_url(settings.redis_url or "").dbsize() == 0
    assert waiting_jobs(settings) == 46
    listed = client.get(f"/v1/batches/{batch['id']}/jobs", params={"limit": 5}).json()
    assert [j["prompt"] for j in listed["data"]] == ["p0", "p1", "p2", "p3", "p4"]
    assert listed["data"][0]["batch_id"] == batch["id"]
    rest = client.get(
        f"/v1/batches/{batch['id']}/jobs", params={"cursor": listed["next_cursor"], "limit": 100}
    ).json()
    assert len(rest["data"]) == 41


def test_jsonl_upload_needs_unique_custom_ids(client: TestClient, db_engine: sa.Engine) -> None:
    body = _jsonl(
        [
            {"custom_id": "a", "kind": "text", "prompt": "one"},
            {"custom_id": "b", "kind": "audio", "prompt": "two"},
        ]
    )
    response = client.post(
        "/v1/batches",
        content=body,
        headers={"content-type": "application/x-ndjson"},
        params={"priority": "high"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["counts"]["total"] == 2
    assert response.json()["priority"] == "high"


def test_bad_jsonl_lists_every_bad_line_and_stores_nothing(
    client: TestClient, db_engine: sa.Engine
) -> None:
    body = _jsonl(
        [
            {"custom_id": "ok", "kind": "text", "prompt": "fine"},
            "{not json",
            {"custom_id": "w", "kind": "image", "prompt": "x", "params": {"width": 100}},
            {"kind": "text", "prompt": "no custom id"},
            {"custom_id": "ok", "kind": "text", "prompt": "dup"},
            "",
            {"custom_id": "k", "kind": "video", "prompt": "x"},
            "[1, 2]",
        ]
    )
    response = client.post(
        "/v1/batches", content=body, headers={"content-type": "application/jsonl"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_batch"
    found = {(e["line"], e["field"]) for e in error["errors"]}
    assert {(2, "line"), (8, "line")} <= found  # not JSON, not an object


def test_bad_json_batch_lists_lines_and_fields(client: TestClient, db_engine: sa.Engine) -> None:
    jobs = [
        {"kind": "text", "prompt": "fine"},
        {"kind": "image", "prompt": "x", "params": {"width": 100}},
        {"kind": "text", "prompt": "x", "params": {"temperature": 9}},
        {"kind": "video", "prompt": "x"},
        {"kind": "text", "prompt": "x", "custom_id": "a"},
        {"kind": "text", "prompt": "x", "custom_id": "a"},
    ]
    response = client.post("/v1/batches", json={"jobs": jobs})
    assert response.status_code == 422
    found = {(e["line"], e["field"]) for e in response.json()["error"]["errors"]}
    assert found == {(2, "params.width"), (3, "params.temperature"), (4, "kind"), (6, "custom_id")}
    assert count_jobs(db_engine) == 0


def test_batch_size_and_emptiness_are_bounded(
    app_client: Callable[[Settings], TestClient], client: TestClient, settings: Settings
) -> None:
    assert client.post("/v1/batches", json={"jobs": []}).status_code == 422
    small = settings.model_copy(update={"max_batch_jobs": 3})

    with app_client(small) as limited:
        jobs = [{"kind": "text", "prompt": "x"}] * 4
        response = limited.post("/v1/batches", json={"jobs": jobs})
        assert response.status_code == 422
        assert "at most 3" in response.json()["error"]["message"]


def test_cancel_queued_batch_and_retry_canceled(client: TestClient) -> None:
    jobs = [{"kind": "text", "model": "echo", "prompt": f"p{i}"} for i in range(5)]
    batch = client.post("/v1/batches", json={"jobs": jobs}).json()
    canceled = client.post(f"/v1/batches/{batch['id']}/cancel").json()
    assert canceled["status"] == "canceled"
    assert canceled["counts"]["canceled"] == 5
    retried = client.post(
        f"/v1/batches/{batch['id']}/retry", params={"include_canceled": "true"}
    ).json()
    assert retried["status"] == "queued"
    assert retried["counts"]["queued"] == 5


def test_oldest_queued_at_says_how_long_work_has_waited(client: TestClient) -> None:
    jobs = [{"kind": "text", "model": "echo", "prompt": f"p{i}"} for i in range(3)]
    created = client.post("/v1/batches", json={"jobs": jobs}).json()
    # Its jobs were queued as it was created.
    assert created["oldest_queued_at"] == created["created_at"]
    batch = client.get(f"/v1/batches/{created['id']}").json()
    oldest = datetime.fromisoformat(batch["oldest_queued_at"])
    assert oldest == datetime.fromisoformat(created["created_at"])
    assert oldest <= datetime.now(UTC)

    canceled = client.post(f"/v1/batches/{created['id']}/cancel").json()
    assert canceled["oldest_queued_at"] is None
    assert client.get(f"/v1/batches/{created['id']}").json()["oldest_queued_at"] is None

    # A retry queues the jobs anew: their wait starts again.
    retried = client.post(
        f"/v1/batches/{created['id']}/retry", params={"include_canceled": "true"}
    ).json()
    assert datetime.fromisoformat(retried["oldest_queued_at"]) > oldest


def test_unknown_batch_is_404(client: TestClient) -> None:
    missing = "0190f5c4-0000-7000-8000-000000000000"
    assert client.get(f"/v1/batches/{missing}").status_code == 404
    assert client.post(f"/v1/batches/{missing}/cancel").status_code == 404
    assert client.get(f"/v1/batches/{missing}/results").status_code == 404


def test_a_cursor_past_any_line_is_a_422_naming_it(client: TestClient) -> None:
    batch = client.post("/v1/batches", json={"jobs": [{"kind": "text", "prompt": "x"}]}).json()
    response = client.get(f"/v1/batches/{batch['id']}/jobs", params={"cursor": 3_000_000_000})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["error"]["errors"]] == ["cursor"]
