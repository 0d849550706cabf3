"""Batches through the real API process, broker and worker process."""

from __future__ import annotations

import io
import json
import time

import sqlalchemy as sa
from PIL import Image

from tests.e2e.conftest import LiveStack
from tests.live import wait_for_batch, wait_for_job

TOO_LONG_FOR_TINY_TEXT = " ".join(f"word{i}" for i in range(3000))


def test_mixed_batch_fails_bad_jobs_alone_and_streams_results_in_order(
    live: LiveStack, db_engine: sa.Engine
) -> None:
    lines = []
    for i in range(20):
        lines.append(
            {
                "custom_id": f"t{i}",
                "kind": "text",
                "prompt": f"Story {i}:",
                "params": {"max_new_tokens": 8, "temperature": 0},
            }
        )
    too_long = {"custom_id": "bad-text", "kind": "text", "prompt": TOO_LONG_FOR_TINY_TEXT}
    lines.append(
        {
            "custom_id": "img",
            "kind": "image",
            "prompt": "a boat",
            "params": {"steps": 2, "num_images": 2},
        }
    )
    lines.append({"custom_id": "bad-audio", "kind": "audio", "prompt": "☃☃☃"})
    lines.append({"custom_id": "voice", "kind": "audio", "prompt": "good morning"})
    lines.append({"custom_id": "echo", "kind": "text", "model": "echo", "prompt": "same words"})
    jsonl = {"content-type": "application/x-ndjson"}
    # A prompt over the text model's context refuses the whole batch at submit.
    refused = live.client.post(
        "/v1/batches",
        content="\n".join(json.dumps(line) for line in [*lines[:5], too_long]).encode(),
        headers=jsonl,
    )
    assert refused.status_code == 422, refused.text
    assert [(e["line"], e["field"], e["code"]) for e in refused.json()["error"]["errors"]] == [
        (6, "prompt", "over_budget")
    ]
    body = "\n".join(json.dumps(line) for line in lines).encode()
    response = live.client.post("/v1/batches", content=body, headers=jsonl)
    assert response.status_code == 202, response.text
    batch = wait_for_batch(live.client, response.json()["id"])

    assert batch["status"] == "completed"
    assert batch["counts"]["total"] == len(lines)
    assert batch["counts"]["failed"] == 1
    assert batch["counts"]["succeeded"] == len(lines) - 1
    assert batch["started_at"] and batch["finished_at"]

    results = [
        json.loads(line)
        for line in live.client.get(f"/v1/batches/{batch['id']}/results").text.splitlines()
    ]
    assert [r["custom_id"] for r in results] == [line["custom_id"] for line in lines]
    assert [r["line"] for r in results] == list(range(1, len(lines) + 1))
    by_id = {r["custom_id"]: r for r in results}
    assert by_id["bad-audio"]["status"] == "failed"
    assert by_id["bad-audio"]["error"]["code"] == "invalid_input"
    assert by_id["echo"]["artifacts"][0]["text"] == "same words"
    assert all(by_id[f"t{i}"]["artifacts"][0]["text"] is not None for i in range(20))
    images = by_id["img"]["artifacts"]
    assert len(images) == 2
    png = live.client.get(images[0]["url"]).content
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (64, 64)
    assert by_id["voice"]["artifacts"][0]["mime_type"] == "audio/wav"

    # The 20 greedy text jobs ran as chunks (one claim per chunk), not one by one.
    with db_engine.connect() as conn:
        claims = conn.execute(
            sa.text(
                "SELECT count(DISTINCT started_at) FROM jobs"
                " WHERE batch_id = :b AND custom_id LIKE 't%'"
            ),
            {"b": batch["id"]},
        ).scalar_one()
    assert claims <= 3


def test_cancel_half_way_stops_the_rest(live: LiveStack) -> None:
    jobs = [
        {
            "kind": "text",
            "prompt": f"Chapter {i}",
            "params": {"max_new_tokens": 200, "temperature": 0},
        }
        for i in range(160)
    ]
    batch = live.client.post("/v1/batches", json={"jobs": jobs}).json()
    wait_for_batch(live.client, batch["id"], until={"running"})
    while live.client.get(f"/v1/batches/{batch['id']}").json()["counts"]["succeeded"] == 0:
        time.sleep(0.05)
    canceling = live.client.post(f"/v1/batches/{batch['id']}/cancel").json()
    assert canceling["status"] in {"canceling", "canceled"}
    final = wait_for_batch(live.client, batch["id"], until={"canceled"})
    counts = final["counts"]
    assert counts["queued"] == counts["running"] == 0
    assert counts["succeeded"] > 0 and counts["canceled"] > 0
    assert counts["succeeded"] + counts["canceled"] + counts["failed"] == 160
    # The counts are the jobs' own states.
    listed = live.client.get(
        f"/v1/batches/{batch['id']}/jobs", params={"status": "canceled", "limit": 1000}
    ).json()
    assert len(listed["data"]) == counts["canceled"]
    # Retry brings the canceled jobs back and keeps the succeeded ones.
    retried = live.client.post(
        f"/v1/batches/{batch['id']}/retry", params={"include_canceled": "true"}
    ).json()
    assert retried["counts"]["succeeded"] == counts["succeeded"]
    done = wait_for_batch(live.client, batch["id"], timeout_s=240)
    assert done["status"] == "completed"
    assert done["counts"]["succeeded"] == 160


def test_retry_a_failed_job(live: LiveStack) -> None:
    # The voice model rejects a prompt it cannot pronounce, on every attempt.
    job = live.client.post("/v1/jobs", json={"kind": "audio", "prompt": "☃☃☃"}).json()

    assert wait_for_job(live.client, job["id"])["status"] == "failed"
    retried = live.client.post(f"/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 200
    again = wait_for_job(live.client, job["id"])
    assert again["status"] == "failed" and again["attempts"] == 2
    ok = live.client.post("/v1/jobs", json={"kind": "text", "model": "echo", "prompt": "x"}).json()
    wait_for_job(live.client, ok["id"])
    assert live.client.post(f"/v1/jobs/{ok['id']}/retry").status_code == 409
