"""A finished batch's ZIP: each artifact under the CLI's file name, manifest.csv and
results.jsonl, streamed; 409 while the batch runs, 404 to another team. The batch runs on
a real worker process (echo model)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app
from tests.conftest import TeamKey
from tests.live import isolated_broker, started_worker, wait_for_batch

PROMPTS = {"a/1": "first", "b 2": "second", "c": "third"}


@pytest.fixture
def stack(settings: Settings, team: TeamKey) -> Iterator[tuple[TestClient, Settings]]:
    with (
        isolated_broker(settings) as isolated,
        TestClient(create_app(isolated), headers=team.headers) as client,
    ):
        yield client, isolated


def test_finished_batch_downloads_as_a_zip_with_manifest_and_results(
    stack: tuple[TestClient, Settings], model_dir: Path, other_team: TeamKey
) -> None:
    client, settings = stack
    jobs = [
        {"custom_id": custom_id, "kind": "text", "model": "echo", "prompt": prompt}
        for custom_id, prompt in PROMPTS.items()
    ]
    created = client.post("/v1/batches", json={"jobs": jobs})
    assert created.status_code == 202, created.text
    batch_id = created.json()["id"]
    archive = f"/v1/batches/{batch_id}/archive"

    running = client.get(archive)
    assert running.status_code == 409
    assert running.json()["error"]["type"] == "conflict"

    with started_worker(settings, model_dir, kinds="text"):
        assert wait_for_batch(client, batch_id)["status"] == "completed"

    assert client.get(archive, headers=other_team.headers).status_code == 404

    response = client.get(archive)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == f'attachment; filename="batch-{batch_id}.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as zipped:
        assert zipped.testzip() is None
        names = zipped.namelist()
        files = ["1-a_1-0.txt", "2-b_2-0.txt", "3-c-0.txt"]
        assert names == [*files, "results.jsonl", "manifest.csv"]
        texts = [zipped.read(name).decode() for name in files]
        manifest = list(csv.DictReader(io.StringIO(zipped.read("manifest.csv").decode())))
        results = [json.loads(line) for line in zipped.read("results.jsonl").splitlines()]
    assert texts == list(PROMPTS.values())
    assert [row["file"] for row in manifest] == files
    assert [row["custom_id"] for row in manifest] == list(PROMPTS)
    assert [row["line"] for row in manifest] == ["1", "2", "3"]
    assert {row["status"] for row in manifest} == {"succeeded"}
    assert [row["sha256"] for row in manifest] == [
        hashlib.sha256(text.encode()).hexdigest() for text in texts
    ]
    assert [line["custom_id"] for line in results] == list(PROMPTS)
    assert [line["artifacts"][0]["text"] for line in results] == list(PROMPTS.values())


def test_unknown_batch_is_404(stack: tuple[TestClient, Settings]) -> None:
    client, _ = stack
    missing = client.get("/v1/batches/0190f0a1-b2c3-7d4e-8f90-a1b2c3d4e5f6/archive")
    assert missing.status_code == 404
    assert client.get("/v1/batches/not-a-uuid/archive").status_code == 422


def test_canceled_batch_lists_its_jobs_without_files(stack: tuple[TestClient, Settings]) -> None:
    client, _ = stack
    # No worker: cancelling finishes the batch, every job canceled, no artifact. A
    # custom_id a spreadsheet would run as a formula is escaped in the manifest.
    jobs = [
        {"custom_id": custom_id, "kind": "text", "model": "echo", "prompt": "p"}
        for custom_id in ("c0", "=1+1")
    ]
    batch_id = client.post("/v1/batches", json={"jobs": jobs}).json()["id"]
    assert client.post(f"/v1/batches/{batch_id}/cancel").status_code == 200

    response = client.get(f"/v1/batches/{batch_id}/archive")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as zipped:
        assert zipped.namelist() == ["results.jsonl", "manifest.csv"]
        manifest = list(csv.DictReader(io.StringIO(zipped.read("manifest.csv").decode())))
    assert [(row["custom_id"], row["status"], row["file"]) for row in manifest] == [
        ("c0", "canceled", ""),
        ("'=1+1", "canceled", ""),
    ]
