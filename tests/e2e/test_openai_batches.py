"""OpenAI Batch API compatibility, driven with the official `openai` client against the real
API process, broker and worker process."""

from __future__ import annotations

import base64
import io
import json
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
import sqlalchemy as sa
from openai import OpenAI
from openai.types import Batch
from PIL import Image

from tests.conftest import TeamKey, count_jobs
from tests.e2e.conftest import LiveStack

TOO_LONG_FOR_TINY_TEXT = " ".join(f"word{i}" for i in range(3000))
FINAL = {"completed", "failed", "cancelled", "expired"}


@pytest.fixture
def client(live: LiveStack, team: TeamKey) -> Iterator[OpenAI]:
    # No retries: a failing call must fail the test, not be retried into a pass.
    with OpenAI(
        base_url=f"{live.api_url}/v1", api_key=team.key, max_retries=0, timeout=60
    ) as openai_client:
        yield openai_client


def _request(custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def _submit(client: OpenAI, endpoint: str, lines: list[dict[str, Any]], **extra: Any) -> Batch:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = client.files.create(file=("requests.jsonl", data), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes == len(data)
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
        **extra,
    )
    assert batch.status == "in_progress"
    assert batch.input_file_id == uploaded.id and batch.endpoint == endpoint
    assert batch.request_counts is not None and batch.request_counts.total == len(lines)
    return batch


def _wait(client: OpenAI, batch_id: str, timeout_s: float = 180.0) -> Batch:
    deadline = time.monotonic() + timeout_s
    while (batch := client.batches.retrieve(batch_id)).status not in FINAL:
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {batch_id} still {batch.status} after {timeout_s}s")
        time.sleep(0.2)
    return batch


def _lines(client: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    assert client.files.retrieve(file_id).purpose == "batch_output"
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def test_chat_completions_batch_end_to_end(client: OpenAI) -> None:
    lines = [
        _request(
            f"chat-{i}",
            "/v1/chat/completions",
            {
                "model": "gpt-4o-mini",  # an alias of tiny-text in the live stack
                "messages": [{"role": "user", "content": f"Write a tagline for product {i}"}],
                "max_tokens": 8,
                "temperature": 0,
            },
        )
        for i in range(6)
    ]
    lines.insert(
        2,
        _request(
            "echo-parts",
            "/v1/chat/completions",
            {
                "model": "echo",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "an earlier turn"},
                    {"role": "assistant", "content": "an earlier answer"},
                    {"role": "user", "content": [{"type": "text", "text": "hello there"}]},
                ],
            },
        ),
    )
    batch = _submit(client, "/v1/chat/completions", lines, metadata={"team": "content"})
    done = _wait(client, batch.id)

    assert done.status == "completed"
    assert done.metadata == {"team": "content"}
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (len(lines), 0)
    assert done.error_file_id is None
    assert done.completed_at and done.finalizing_at and done.in_progress_at
    assert done.expires_at == done.created_at + 24 * 3600
    results = _lines(client, done.output_file_id)
    assert [r["custom_id"] for r in results] == [line["custom_id"] for line in lines]
    for result in results:
        assert result["id"].startswith("batch_req_") and result["error"] is None
        response = result["response"]
        assert response["status_code"] == 200 and response["request_id"]
        body = response["body"]
        assert body["object"] == "chat.completion"
        [choice] = body["choices"]
        assert choice["message"]["role"] == "assistant"
        assert choice["message"]["content"]
        assert choice["finish_reason"] in {"stop", "length"}
        assert body["usage"]["completion_tokens"] > 0
    by_id = {r["custom_id"]: r["response"]["body"] for r in results}
    # System messages, then the last user message; earlier turns are left out.
    assert by_id["echo-parts"]["choices"][0]["message"]["content"] == "Be brief.\n\nhello there"
    assert by_id["echo-parts"]["model"] == "echo"
    assert by_id["chat-0"]["model"] == "tiny-text"
    # Asking again serves the same files: they are written once.
    assert client.batches.retrieve(batch.id).output_file_id == done.output_file_id


def test_failed_requests_go_to_the_error_file(client: OpenAI) -> None:
    # The voice model rejects, in the worker, an input it cannot pronounce.
    lines = [
        _request("ok-1", "/v1/audio/speech", {"model": "tiny-audio", "input": "good morning"}),
        _request("mute", "/v1/audio/speech", {"model": "tiny-audio", "input": "☃☃☃"}),
        _request("ok-2", "/v1/audio/speech", {"model": "tiny-audio", "input": "good night"}),
    ]
    done = _wait(client, _submit(client, "/v1/audio/speech", lines).id)

    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 1)
    assert [r["custom_id"] for r in _lines(client, done.output_file_id)] == ["ok-1", "ok-2"]
    [error] = _lines(client, done.error_file_id)
    assert error["custom_id"] == "mute"
    assert error["error"]["code"] == "invalid_input"
    assert "pronounce" in error["error"]["message"]
    assert error["response"]["status_code"] == 400
    assert error["response"]["body"]["error"]["code"] == "invalid_input"


def test_request_over_the_models_context_is_refused_at_creation(
    client: OpenAI, db_engine: sa.Engine
) -> None:
    body = {"messages": [{"role": "user", "content": "A short story:"}], "max_tokens": 4}
    lines = [
        _request("ok", "/v1/chat/completions", body),
        _request(
            "too-long",
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": TOO_LONG_FOR_TINY_TEXT}]},
        ),
        _request("too-many", "/v1/chat/completions", {**body, "max_tokens": 600}),
    ]
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        _submit(client, "/v1/chat/completions", lines)
    errors = raised.value.response.json()["error"]["errors"]
    assert {(e["line"], e["field"], e["code"]) for e in errors} == {
        (2, "body.messages", "over_budget"),
        (3, "body.max_tokens", "over_budget"),
    }
    assert count_jobs(db_engine) == 0


def test_unknown_model_is_refused_not_run_on_another(client: OpenAI, db_engine: sa.Engine) -> None:
    lines = [
        _request("a", "/v1/chat/completions", {"model": "gpt-5-nano", "messages": [
            {"role": "user", "content": "hi"}]}),
    ]  # fmt: skip
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        _submit(client, "/v1/chat/completions", lines)
    [error] = raised.value.response.json()["error"]["errors"]
    assert (error["line"], error["field"], error["code"]) == (1, "body.model", "model_not_found")
    assert count_jobs(db_engine) == 0


def test_completions_batch(client: OpenAI) -> None:
    lines = [
        _request("c1", "/v1/completions", {"model": "echo", "prompt": "Once upon a time"}),
        _request("c2", "/v1/completions", {"model": "echo", "prompt": ["A single prompt"]}),
    ]
    done = _wait(client, _submit(client, "/v1/completions", lines).id)
    assert done.status == "completed"
    bodies = [r["response"]["body"] for r in _lines(client, done.output_file_id)]
    assert [b["object"] for b in bodies] == ["text_completion"] * 2
    assert [b["choices"][0]["text"] for b in bodies] == ["Once upon a time", "A single prompt"]


def test_image_batch_with_urls_and_base64(client: OpenAI, live: LiveStack) -> None:
    lines = [
        _request(
            "urls",
            "/v1/images/generations",
            {"model": "dall-e-3", "prompt": "a lighthouse", "size": "64x64", "n": 2},
        ),
        _request(
            "inline",
            "/v1/images/generations",
            {"prompt": "a harbour", "size": "64x64", "response_format": "b64_json"},
        ),
    ]
    done = _wait(client, _submit(client, "/v1/images/generations", lines).id)
    assert done.status == "completed"
    by_id = {r["custom_id"]: r["response"]["body"] for r in _lines(client, done.output_file_id)}

    urls = by_id["urls"]["data"]
    assert len(urls) == 2 and by_id["urls"]["created"]
    for entry in urls:
        _assert_png(live.client.get(entry["url"]).raise_for_status().content, (64, 64))
    [inline] = by_id["inline"]["data"]
    assert "url" not in inline
    _assert_png(base64.b64decode(inline["b64_json"]), (64, 64))


def _assert_png(data: bytes, size: tuple[int, int]) -> None:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert image.size == size


def test_speech_batch_gives_wav(client: OpenAI, live: LiveStack) -> None:
    lines = [
        _request(
            "by-url",
            "/v1/audio/speech",
            {"model": "tts-1", "input": "Your order has shipped.", "voice": "alloy",
             "response_format": "wav", "speed": 1.2},
        ),
        _request(
            "inline",
            "/v1/audio/speech",
            {"input": "Thank you.", "response_format": "wav", "include_b64_json": True},
        ),
    ]  # fmt: skip
    done = _wait(client, _submit(client, "/v1/audio/speech", lines).id)
    assert done.status == "completed"
    by_id = {r["custom_id"]: r["response"]["body"] for r in _lines(client, done.output_file_id)}

    for body in by_id.values():
        assert body["object"] == "audio.speech"
        assert body["mime_type"] == "audio/wav"
        assert body["duration_s"] > 0
        _assert_wav(live.client.get(body["url"]).raise_for_status().content)
    assert "b64_json" not in by_id["by-url"]
    _assert_wav(base64.b64decode(by_id["inline"]["b64_json"]))


def _assert_wav(data: bytes) -> None:
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnframes() > 0
        assert wav.getsampwidth() == 2


def test_list_newest_first_and_cancel(client: OpenAI) -> None:
    body = {"messages": [{"role": "user", "content": "Chapter one"}], "max_tokens": 64}
    first = _submit(
        client, "/v1/chat/completions", [_request("only", "/v1/chat/completions", body)]
    )
    lines = [_request(f"r{i}", "/v1/chat/completions", body) for i in range(48)]
    second = _submit(client, "/v1/chat/completions", lines)

    page = client.batches.list(limit=1)
    assert [b.id for b in page.data] == [second.id]
    assert page.has_more
    assert [b.id for b in client.batches.list(limit=1, after=second.id).data] == [first.id]

    cancelling = client.batches.cancel(second.id)
    assert cancelling.status in {"cancelling", "cancelled"}
    assert cancelling.cancelling_at is not None
    done = _wait(client, second.id)
    assert done.status == "cancelled" and done.cancelled_at is not None
    counts = done.request_counts
    assert counts is not None and counts.total == 48
    assert counts.failed > 0 and counts.completed + counts.failed == 48
    output = _lines(client, done.output_file_id)
    errors = _lines(client, done.error_file_id)
    assert len(output) == counts.completed and len(errors) == counts.failed
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
    assert [e["custom_id"] for e in errors] == sorted(
        (e["custom_id"] for e in errors), key=lambda custom_id: int(custom_id[1:])
    )


def test_invalid_input_file_is_422_listing_lines(client: OpenAI, db_engine: sa.Engine) -> None:
    good = {"messages": [{"role": "user", "content": "hi"}]}
    lines = [
        _request("a", "/v1/chat/completions", good),
        _request("b", "/v1/completions", good),
        _request("c", "/v1/chat/completions", {**good, "max_tokens": 0}),
        _request("d", "/v1/chat/completions", {**good, "n": 3}),
        _request("a", "/v1/chat/completions", good),
    ]
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        _submit(client, "/v1/chat/completions", lines)
    errors = raised.value.response.json()["error"]["errors"]
    assert {(e["line"], e["field"]) for e in errors} == {
        (2, "url"),
        (3, "body.max_tokens"),
        (4, "body.n"),
        (5, "custom_id"),
    }
    assert count_jobs(db_engine) == 0

    # A file that is not there (or is another team's) is a 404 naming the field.
    with pytest.raises(openai.NotFoundError) as unknown:
        client.batches.create(
            input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert unknown.value.response.json()["error"]["errors"][0]["field"] == "input_file_id"


def test_concurrent_retrieves_write_the_result_files_once(
    client: OpenAI, live: LiveStack, db_engine: sa.Engine
) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "same"}]}
    lines = [_request(f"e{i}", "/v1/chat/completions", body) for i in range(30)]
    batch = _submit(client, "/v1/chat/completions", lines)
    # Wait on the native job listing: it does not render the batch, so no files exist yet.
    deadline = time.monotonic() + 120
    while len(_succeeded_jobs(live, batch.id)) < len(lines):
        assert time.monotonic() < deadline, "the echo jobs did not finish"
        time.sleep(0.2)

    with ThreadPoolExecutor(max_workers=8) as pool:
        retrieved = list(pool.map(lambda _: client.batches.retrieve(batch.id), range(8)))
    assert {b.status for b in retrieved} == {"completed"}
    assert len({b.output_file_id for b in retrieved}) == 1
    with db_engine.connect() as conn:
        written = conn.execute(
            sa.text("SELECT count(*) FROM files WHERE filename LIKE :name"),
            {"name": f"batch_{batch.id}_%"},
        ).scalar_one()
    assert written == 1
    assert len(_lines(client, retrieved[0].output_file_id)) == len(lines)


def _succeeded_jobs(live: LiveStack, batch_id: str) -> list[dict[str, Any]]:
    response = live.client.get(
        f"/v1/batches/{batch_id}/jobs", params={"status": "succeeded", "limit": 1000}
    )
    return response.raise_for_status().json()["data"]  # type: ignore[no-any-return]


def test_output_whose_bytes_expired_goes_to_the_error_file(
    client: OpenAI, live: LiveStack, db_engine: sa.Engine, artifact_dir: Path
) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "kept or not"}]}
    lines = [_request(f"e{i}", "/v1/chat/completions", body) for i in range(2)]
    batch = _submit(client, "/v1/chat/completions", lines)
    deadline = time.monotonic() + 120
    while len(jobs := _succeeded_jobs(live, batch.id)) < len(lines):
        assert time.monotonic() < deadline, "the echo jobs did not finish"
        time.sleep(0.2)
    # One job's text is deleted before the output file is written, as the retention sweep
    # deletes expired bytes.
    expired = next(job for job in jobs if job["custom_id"] == "e1")
    with db_engine.connect() as conn:
        key = conn.execute(
            sa.text("SELECT storage_key FROM artifacts WHERE job_id = :id"), {"id": expired["id"]}
        ).scalar_one()
    (artifact_dir / key).unlink()

    done = _wait(client, batch.id)
    assert done.status == "completed"
    [kept] = _lines(client, done.output_file_id)
    assert kept["custom_id"] == "e0" and kept["response"]["status_code"] == 200
    assert done.error_file_id is not None
    [gone] = [
        json.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()
    ]
    assert gone["custom_id"] == "e1" and gone["error"]["code"] == "gone"
