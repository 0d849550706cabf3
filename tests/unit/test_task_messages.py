"""Unit tier (no services): what a run_jobs message may carry, and what a published chunk
tells an operator."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from workers.dispatch import Chunk
from workers.dispatcher import job_ids_in_message
from workers.messages import parse_job_ids

A, B = uuid.uuid4(), uuid.uuid4()


def test_job_ids_parse() -> None:
    assert parse_job_ids(([str(A), str(B)],), {}) == [A, B]


@pytest.mark.parametrize(
    "args,kwargs",
    [
        ((), {}),
        (("abc",), {}),
        ((None,), {}),
        (([],), {}),
        (([str(A), "not-a-uuid"],), {}),
        (([str(A), 7],), {}),
        (([[str(A)]],), {}),
        (([str(A)], [str(B)]), {}),
        (([str(A)],), {"evil": 1}),
        (({"ids": [str(A)]},), {}),
    ],
)
def test_anything_else_is_refused_in_one_line(
    args: tuple[Any, ...], kwargs: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    assert parse_job_ids(args, kwargs) is None
    assert len(caplog.records) == 1
    assert "discarded a run_jobs call" in caplog.records[0].getMessage()


def test_chunks_say_what_they_carry() -> None:
    batch_1, batch_2 = uuid.uuid4(), uuid.uuid4()
    chunk = Chunk("text", "low", (uuid.uuid4(), uuid.uuid4(), uuid.uuid4()), batch_1)
    assert chunk.describe() == f"text chunk of 3 jobs, batch {batch_1}"
    assert chunk.queue == "text.low"
    assert Chunk("image", "normal", (A,)).describe() == f"image job {A}"
    assert Chunk("audio", "low", (A,), batch_2).describe() == f"audio job {A}, batch {batch_2}"


def _message(body: object, properties: object = None) -> str:
    encoded = base64.b64encode(json.dumps(body).encode()).decode()
    return json.dumps({"body": encoded, "properties": properties or {"body_encoding": "base64"}})


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe",
        "not json",
        "[]",
        json.dumps({"body": "x", "properties": [1]}),
        _message({"a": 1}),
        _message([None]),
        _message([[7]]),
    ],
)
def test_the_dispatcher_skips_malformed_messages_it_scans(raw: str | bytes) -> None:
    assert job_ids_in_message(raw) == []


def test_the_dispatcher_reads_the_ids_of_ours() -> None:
    assert job_ids_in_message(_message([[[str(A), str(B)]], {}, {}])) == [str(A), str(B)]
