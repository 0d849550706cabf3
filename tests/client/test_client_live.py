"""`aigc.client.Client` against the real API, dispatcher and worker processes."""

from __future__ import annotations

import csv
import hashlib
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from aigc.client import (
    Batch,
    Client,
    Conflict,
    InvalidRequest,
    Job,
    NotFound,
    RateLimited,
    ResultLine,
    Unauthorized,
)
from tests.conftest import count_jobs, make_team_key
from tests.e2e.conftest import LiveStack


def test_submit_wait_download_a_text_job(client: Client, tmp_path: Path) -> None:
    job = client.submit("text", "hello from the sdk", model="echo", metadata={"k": "v"})
    assert isinstance(job, Job) and job.status == "queued"
    done = client.wait(job.id, timeout_s=60)
    assert done.status == "succeeded" and done.metadata == {"k": "v"}
    [artifact] = done.artifacts
    path = client.download(artifact, tmp_path / "out.txt")
    assert path.read_text(encoding="utf-8") == "hello from the sdk"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == artifact.sha256
    label = json.loads(Path(f"{path}.label.json").read_text(encoding="utf-8"))
    assert (label["content_id"], label["job_id"]) == (artifact.id, job.id)
    assert client.get(job.id).status == "succeeded"


def _check_results(client: Client, batch: Batch, custom_ids: list[str]) -> list[ResultLine]:
    final = client.wait_batch(batch.id, timeout_s=60)
    assert final.status == "completed" and final.counts.succeeded == len(custom_ids)
    lines = list(client.batch_results(batch.id))
    assert [line.custom_id for line in lines] == custom_ids
    assert all(isinstance(line, ResultLine) and line.status == "succeeded" for line in lines)
    return lines


def test_batch_from_a_list_waits_via_the_event_stream(client: Client, tmp_path: Path) -> None:
    jobs = [
        {"kind": "text", "model": "echo", "prompt": f"line {n}", "custom_id": f"c{n}"}
        for n in range(3)
    ]
    batch = client.submit_batch(jobs, metadata={"from": "list"})
    assert batch.counts.total == 3
    lines = _check_results(client, batch, ["c0", "c1", "c2"])
    assert [line.artifacts[0].text for line in lines] == ["line 0", "line 1", "line 2"]
    jsonl = client.download_batch_results(batch.id, tmp_path / "results.jsonl")
    assert [json.loads(line)["custom_id"] for line in jsonl.read_text().splitlines()] == [
        "c0",
        "c1",
        "c2",
    ]
    as_csv = client.download_batch_results(batch.id, tmp_path / "results.csv", format="csv")
    with as_csv.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(row["custom_id"], row["text"]) for row in rows] == [
        ("c0", "line 0"),
        ("c1", "line 1"),
        ("c2", "line 2"),
    ]
    jobs_in_order = list(client.batch_jobs(batch.id, page_size=2))
    assert [job.custom_id for job in jobs_in_order] == ["c0", "c1", "c2"]
    assert list(client.batch_jobs(batch.id, status="failed")) == []


def test_batch_from_csv_and_jsonl_files(client: Client, tmp_path: Path) -> None:
    csv_path = tmp_path / "jobs.csv"
    csv_path.write_text(
        "custom_id,prompt,model,params.max_new_tokens,metadata.row\n"
        "a,first,echo,8,1\nb,second,echo,8,2\n",
        encoding="utf-8",
    )
    _check_results(client, client.submit_batch(csv_path), ["a", "b"])
    jsonl_path = tmp_path / "jobs.jsonl"
    jsonl_path.write_text(
        '{"custom_id": "j", "kind": "text", "model": "echo", "prompt": "x"}\n', encoding="utf-8"
    )
    _check_results(client, client.submit_batch(jsonl_path, priority="high"), ["j"])


def test_a_bad_csv_row_is_refused_before_any_request(
    client: Client, tmp_path: Path, db_engine: sa.Engine
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("prompt,kind\nhi,text\n,image\n", encoding="utf-8")
    with pytest.raises(ValueError, match="row 2, column 'prompt': is required"):
        client.submit_batch(path)
    assert count_jobs(db_engine) == 0


def test_list_iterates_over_pages(client: Client) -> None:
    ids = [client.submit("text", f"p{n}", model="echo").id for n in range(5)]
    listed = [job.id for job in client.list(page_size=2)]
    assert listed == ids[::-1]
    batches = [client.submit_batch([{"kind": "text", "model": "echo", "prompt": "b"}]).id]
    batches.append(client.submit_batch([{"kind": "text", "model": "echo", "prompt": "c"}]).id)
    assert [b.id for b in client.list_batches(page_size=1)] == batches[::-1]


def test_cancel_and_retry(client: Client) -> None:
    # The voice model rejects a prompt it cannot pronounce, on every attempt.
    failed = client.wait(client.submit("audio", "☃☃☃").id, timeout_s=60)
    assert failed.status == "failed" and failed.error is not None
    client.retry(failed.id)
    again = client.wait(failed.id, timeout_s=60)
    assert again.status == "failed" and again.attempts == 2
    with pytest.raises(Conflict) as raised:
        client.cancel(again.id)
    assert raised.value.status == 409 and raised.value.code == "conflict"


def test_errors_are_typed_with_code_and_fields(client: Client, live: LiveStack) -> None:
    with pytest.raises(InvalidRequest) as raised:
        client.submit("text", "hi", params={"max_new_tokens": 0})
    assert raised.value.status == 422 and raised.value.code == "invalid_request"
    assert [e.field for e in raised.value.field_errors] == ["params.max_new_tokens"]
    with pytest.raises(NotFound) as missing:
        client.get(str(uuid.uuid4()))
    assert missing.value.code == "not_found"
    with (
        Client(live.api_url, "aigc_00000000_" + "k" * 43) as stranger,
        pytest.raises(Unauthorized) as refused,
    ):
        stranger.get(str(uuid.uuid4()))
    assert refused.value.status == 401 and "aigc_0000" not in repr(stranger)


class DropFirstResponse(httpx.BaseTransport):
    """Sends each request, but loses the first POST's answer on the way back, as a
    connection cut after the server committed would."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.dropped = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and not self.dropped:
            self.dropped += 1
            response.close()
            raise httpx.ReadError("connection reset", request=request)
        return response


def test_a_retried_submit_creates_one_job(
    live: LiveStack, team_key: str, db_engine: sa.Engine
) -> None:
    transport = DropFirstResponse()
    with Client(live.api_url, team_key, transport=transport) as client:
        job = client.submit("text", "once", model="echo")
        assert transport.dropped == 1
        assert count_jobs(db_engine) == 1
        # The same key by hand: the first job again, nothing new.
        body = {"kind": "text", "model": "echo", "prompt": "twice?"}
        headers = {"Idempotency-Key": "my-key-1"}
        first = client.request("POST", "/v1/jobs", json=body, headers=headers).json()
        second = client.request("POST", "/v1/jobs", json=body, headers=headers).json()
        assert first["id"] == second["id"] != job.id
        assert count_jobs(db_engine) == 2


def test_429_is_retried_after_retry_after(live: LiveStack, db_engine: sa.Engine) -> None:
    limited = make_team_key(db_engine, f"sdk-rate-{uuid.uuid4().hex[:8]}", rate_per_s=1.0)
    with Client(live.api_url, limited.key, max_retries=0) as impatient:
        impatient.submit("text", "first", model="echo")
        with pytest.raises(RateLimited) as raised:
            impatient.submit("text", "second", model="echo")
        assert raised.value.status == 429 and raised.value.retry_after_s == 1.0
    with Client(live.api_url, limited.key) as patient:
        started = time.monotonic()
        patient.submit("text", "third", model="echo")
        patient.submit("text", "fourth", model="echo")  # refused once, then sent again
        assert time.monotonic() - started >= 0.9
    assert count_jobs(db_engine) == 3


@pytest.fixture
def team_key(client: Client) -> str:
    key = client.config.api_key
    assert key is not None
    return key


class NoEventStreams(httpx.BaseTransport):
    """An older server: no event-stream routes (405), everything else as it is."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.refused = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            self.refused += 1
            return httpx.Response(405, json={"error": {"type": "x", "message": "no"}})
        return self.inner.handle_request(request)


def test_wait_polls_a_server_without_event_streams(live: LiveStack, team_key: str) -> None:
    transport = NoEventStreams()
    with Client(live.api_url, team_key, transport=transport) as client:
        job = client.wait(client.submit("text", "polled", model="echo").id, timeout_s=60)
        assert job.status == "succeeded"
        batch = client.submit_batch([{"kind": "text", "model": "echo", "prompt": "p"}])
        assert client.wait_batch(batch.id, timeout_s=60).status == "completed"
        with pytest.raises(NotFound):
            client.wait(str(uuid.uuid4()), timeout_s=5)
    assert transport.refused == 3
