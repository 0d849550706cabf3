"""A batch's results JSONL: streamed live while the batch runs, stored once when it has
finished and then served from the store (ETag, ranges), invalidated by retries. The batch
runs on a real worker process (echo model)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from aigc.settings import Settings
from api.main import create_app
from api.schemas import ResultLine
from tests.conftest import TeamKey
from tests.live import isolated_broker, started_worker, wait_for_batch

JOBS = 40
DOWNLOADERS = 8
RESULT_LINES = TypeAdapter(list[ResultLine])


@pytest.fixture
def stack(settings: Settings, team: TeamKey) -> Iterator[tuple[TestClient, Settings]]:
    """The API in-process on a broker database of its own (a worker started by the test
    takes only this test's messages)."""
    with (
        isolated_broker(settings) as isolated,
        TestClient(create_app(isolated), headers=team.headers) as client,
    ):
        yield client, isolated


def _submit(client: TestClient, count: int) -> str:
    body = "".join(
        json.dumps({"custom_id": f"c{n}", "kind": "text", "model": "echo", "prompt": f"p {n}"})
        + "\n"
        for n in range(count)
    )
    response = client.post(
        "/v1/batches", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _stored(engine: sa.Engine, batch_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT results_key, results_bytes, results_sha256 FROM batches WHERE id = :id"
            ),
            {"id": batch_id},
        ).one()
    return dict(row._mapping)


def _objects(settings: Settings, batch_id: str) -> list[Path]:
    folder = Path(settings.artifact_dir) / "batches" / batch_id
    return sorted(folder.iterdir()) if folder.exists() else []


def _lines(body: bytes) -> list[ResultLine]:
    return RESULT_LINES.validate_python([json.loads(line) for line in body.splitlines()])


def test_finished_results_are_stored_once_and_served_identically(
    stack: tuple[TestClient, Settings], model_dir: Path, db_engine: sa.Engine
) -> None:
    client, settings = stack
    batch_id = _submit(client, JOBS)
    results = f"/v1/batches/{batch_id}/results"

    # Unfinished: streamed as it stands, no ETag, nothing stored.
    live = client.get(results)
    assert live.status_code == 200 and "etag" not in live.headers
    assert live.headers["x-content-type-options"] == "nosniff"
    assert [line.status for line in _lines(live.content)] == ["queued"] * JOBS
    assert _stored(db_engine, batch_id)["results_key"] is None

    with started_worker(settings, model_dir, kinds="text"):
        assert wait_for_batch(client, batch_id)["status"] == "completed"

    # Eight concurrent first downloads: one writes the object, all get the same bytes.
    with ThreadPoolExecutor(DOWNLOADERS) as pool:
        downloads = list(pool.map(lambda _: client.get(results), range(DOWNLOADERS)))
    assert {d.status_code for d in downloads} == {200}
    bodies = {d.content for d in downloads}
    assert len(bodies) == 1
    [body] = bodies
    stored = _stored(db_engine, batch_id)
    assert stored["results_sha256"] == hashlib.sha256(body).hexdigest()
    assert stored["results_bytes"] == len(body)
    objects = _objects(settings, batch_id)
    assert [path.name for path in objects] == [stored["results_key"].rsplit("/", 1)[-1]]
    written_at = objects[0].stat().st_mtime_ns
    etag = f'"{stored["results_sha256"]}"'
    assert {d.headers["etag"] for d in downloads} == {etag}
    assert {d.headers["x-content-type-options"] for d in downloads} == {"nosniff"}
    assert downloads[0].headers["accept-ranges"] == "bytes"
    assert (
        downloads[0].headers["content-disposition"]
        == f'attachment; filename="batch-{batch_id}-results.jsonl"'
    )

    lines = _lines(body)
    assert [line.custom_id for line in lines] == [f"c{n}" for n in range(JOBS)]
    assert [line.line for line in lines] == list(range(1, JOBS + 1))
    assert all(line.status == "succeeded" for line in lines)
    assert [line.artifacts[0].text for line in lines] == [f"p {n}" for n in range(JOBS)]

    # Later downloads: the same object, not written again.
    again = client.get(results)
    assert again.content == body
    assert _objects(settings, batch_id) == objects
    assert objects[0].stat().st_mtime_ns == written_at
    assert _stored(db_engine, batch_id) == stored

    # Conditional and ranged requests.
    assert client.get(results, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(results, headers={"If-None-Match": f"W/{etag}"}).status_code == 304
    assert client.get(results, headers={"If-None-Match": '"other"'}).status_code == 200
    part = client.get(results, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == body[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(body)}"
    tail = client.get(results, headers={"Range": "bytes=-25"})
    assert tail.status_code == 206 and tail.content == body[-25:]
    resumed = client.get(results, headers={"Range": "bytes=100-", "If-Range": etag})
    assert resumed.status_code == 206 and resumed.content == body[100:]
    stale = client.get(results, headers={"Range": "bytes=100-", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == body
    past_end = client.get(results, headers={"Range": f"bytes={len(body)}-"})
    assert past_end.status_code == 416
    assert past_end.json()["error"]["type"] == "range_not_satisfiable"

    # The artifacts the lines point at: nosniff, their sha256 as ETag.
    artifact = lines[0].artifacts[0]
    download = client.get(artifact.url)
    assert download.status_code == 200 and download.content == b"p 0"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["etag"] == f'"{artifact.sha256}"'
    not_modified = client.get(artifact.url, headers={"If-None-Match": f'"{artifact.sha256}"'})
    assert not_modified.status_code == 304


def _cancel_and_store(client: TestClient, batch_id: str) -> httpx.Response:
    assert client.post(f"/v1/batches/{batch_id}/cancel").status_code == 200
    stored = client.get(f"/v1/batches/{batch_id}/results")
    assert stored.status_code == 200 and "etag" in stored.headers
    return stored


def test_batch_retry_invalidates_stored_results(
    stack: tuple[TestClient, Settings], db_engine: sa.Engine
) -> None:
    client, settings = stack
    # No worker: cancelling finishes the batch, every job canceled.
    batch_id = _submit(client, 5)
    first = _cancel_and_store(client, batch_id)
    assert {line.status for line in _lines(first.content)} == {"canceled"}
    [old_object] = _objects(settings, batch_id)

    retried = client.post(f"/v1/batches/{batch_id}/retry", params={"include_canceled": True})
    assert retried.status_code == 200, retried.text
    assert _stored(db_engine, batch_id) == {
        "results_key": None,
        "results_bytes": None,
        "results_sha256": None,
    }
    assert not old_object.exists()
    live = client.get(f"/v1/batches/{batch_id}/results")
    assert "etag" not in live.headers
    assert {line.status for line in _lines(live.content)} == {"queued"}

    second = _cancel_and_store(client, batch_id)
    assert second.headers["etag"] == first.headers["etag"]  # the same lines again
    assert _objects(settings, batch_id) != [old_object]


def test_job_retry_invalidates_its_batch_results(
    stack: tuple[TestClient, Settings], db_engine: sa.Engine
) -> None:
    client, settings = stack
    batch_id = _submit(client, 3)
    _cancel_and_store(client, batch_id)
    [old_object] = _objects(settings, batch_id)
    job = client.get(f"/v1/batches/{batch_id}/jobs").json()["data"][1]
    assert client.post(f"/v1/jobs/{job['id']}/retry").status_code == 200
    assert _stored(db_engine, batch_id)["results_key"] is None
    assert not old_object.exists()
    live = client.get(f"/v1/batches/{batch_id}/results")
    assert "etag" not in live.headers
    assert [line.status for line in _lines(live.content)] == ["canceled", "queued", "canceled"]


def test_lost_results_object_is_written_again(
    stack: tuple[TestClient, Settings], db_engine: sa.Engine
) -> None:
    client, settings = stack
    batch_id = _submit(client, 2)
    first = _cancel_and_store(client, batch_id)
    [lost] = _objects(settings, batch_id)
    lost.unlink()  # an operator cleaned the store
    again = client.get(f"/v1/batches/{batch_id}/results")
    assert again.status_code == 200 and again.content == first.content
    [rewritten] = _objects(settings, batch_id)
    assert rewritten != lost
    assert str(_stored(db_engine, batch_id)["results_key"]).endswith(rewritten.name)
