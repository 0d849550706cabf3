"""Server-sent events from the real API process, read with a real SSE client (httpx-sse):
status changes and progress as a worker process makes them, resumption with Last-Event-ID."""

from __future__ import annotations

import json
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from tests.conftest import TeamKey
from tests.e2e.conftest import LiveStack
from tests.live import submit, wait_for_batch, wait_for_job

STREAM_TIMEOUT = httpx.Timeout(10.0, read=60.0)


def follow(
    client: httpx.Client, path: str, last_event_id: str | None = None
) -> list[ServerSentEvent]:
    """Every event of a stream, read until the server ends it."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    with connect_sse(client, "GET", path, headers=headers, timeout=STREAM_TIMEOUT) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return list(source.iter_sse())


def data(event: ServerSentEvent) -> dict[str, Any]:
    return json.loads(event.data)  # type: ignore[no-any-return]


def test_job_stream_shows_start_progress_and_the_finished_job(live: LiveStack) -> None:
    job = submit(
        live.client,
        kind="image",
        prompt="a lighthouse at dusk",
        params={"width": 64, "height": 64, "steps": 40, "seed": 1},
    )
    events = follow(live.client, f"/v1/jobs/{job['id']}/events")

    names = [event.event for event in events]
    assert names[0] == "status" and data(events[0])["id"] == job["id"]
    assert names[-1] == "completed"
    # Started before the stream opened, or after: the snapshot or an event says so.
    assert set(names) <= {"status", "started", "progress", "completed"}, [
        (e.event, e.id, e.data[:80]) for e in events if e.event != "progress"
    ]
    assert "started" in names or data(events[0])["status"] == "running", names
    progress = [data(event)["progress"] for event in events if event.event == "progress"]
    assert progress, names
    assert all(p["total"] == 40 for p in progress)
    done_steps = [p["done"] for p in progress]
    assert done_steps == sorted(done_steps) and 0 < done_steps[-1] <= 40
    finished = data(events[-1])
    assert finished["status"] == "succeeded"
    assert finished["progress"] == {"done": 40, "total": 40}
    assert finished["artifacts"][0]["mime_type"] == "image/png"
    # Every event after the snapshot has an id, in stream order.
    ids = [event.id for event in events]
    assert all(ids)
    assert ids == sorted(ids, key=lambda i: tuple(int(part) for part in i.split("-")))


def test_resuming_with_last_event_id_sends_only_what_was_missed(live: LiveStack) -> None:
    job = submit(live.client, kind="text", prompt="Once upon a time", params={"max_new_tokens": 48})
    wait_for_job(live.client, job["id"])
    # A client that saw only the start of the job reconnects: it gets the rest, from the
    # database, and the stream ends with the finished job.
    path = f"/v1/jobs/{job['id']}/events"
    first = live.client.get(f"/v1/jobs/{job['id']}").json()
    assert first["status"] == "succeeded"
    everything = follow(live.client, path, last_event_id="0-0")
    assert [event.event for event in everything][0] == "started"
    assert everything[-1].event == "completed"
    after_start = follow(live.client, path, last_event_id=everything[0].id)
    assert [event.id for event in after_start] == [event.id for event in everything[1:]]
    # Nothing left after the last event: 204, which tells EventSource to stop reconnecting.
    response = live.client.get(path, headers={"Last-Event-ID": everything[-1].id})
    assert response.status_code == 204


def test_batch_stream_counts_jobs_until_the_batch_completes(live: LiveStack) -> None:
    lines = [
        {
            "custom_id": f"c{i}",
            "kind": "text",
            "prompt": f"Story {i}",
            "params": {"max_new_tokens": 16},
        }
        for i in range(6)
    ]
    response = live.client.post("/v1/batches", json={"jobs": lines})
    assert response.status_code == 202, response.text
    batch = response.json()
    events = follow(live.client, f"/v1/batches/{batch['id']}/events")

    assert events[0].event == "status"
    snapshot = data(events[0])["counts"]
    assert events[-1].event == "completed"
    final = data(events[-1])
    assert final["status"] == "completed"
    assert final["counts"]["succeeded"] == 6
    completed_jobs = {data(event)["job_id"] for event in events if event.event == "job_completed"}
    # Each job that finished after the stream opened is announced once.
    assert len(completed_jobs) == 6 - snapshot["succeeded"]
    assert all(
        data(event)["status"] == "succeeded" for event in events if event.event == "job_completed"
    )
    wait_for_batch(live.client, batch["id"])


def test_streams_are_team_scoped_and_check_their_input(
    live: LiveStack, other_team: TeamKey
) -> None:
    job = submit(live.client, kind="text", model="echo", prompt="mine")
    path = f"/v1/jobs/{job['id']}/events"
    with httpx.Client(base_url=live.api_url, headers=other_team.headers, timeout=10) as other:
        assert other.get(path).status_code == 404
    assert httpx.get(live.api_url + path, timeout=10).status_code == 401
    bad = live.client.get(path, headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["error"]["errors"][0]["field"] == "Last-Event-ID"
    assert live.client.get(f"/v1/batches/{job['id']}/events").status_code == 404


def test_a_client_that_does_not_read_its_stream_holds_nothing_up(live: LiveStack) -> None:
    lines = [{"kind": "text", "model": "echo", "prompt": f"line {i}"} for i in range(40)]
    batch = live.client.post("/v1/batches", json={"jobs": lines}).raise_for_status().json()
    path = f"/v1/batches/{batch['id']}/events"
    with live.client.stream("GET", path, timeout=STREAM_TIMEOUT) as stalled:
        # Nothing read from the stream while the whole batch runs.
        done = wait_for_batch(live.client, batch["id"], timeout_s=60)
        assert done["counts"]["succeeded"] == 40
        names = []
        for line in stalled.iter_lines():
            if line.startswith("event: "):
                names.append(line.removeprefix("event: "))
    assert names[0] == "status" and names[-1] == "completed"
