"""Per-team limits at submission: at most `max_queued` jobs queued or running, at most
`rate_per_s` submissions per second (a token bucket in Redis). Over either: 429 with
Retry-After and a message naming the limit, and nothing stored. Each test makes teams of
its own (teams outlive the per-test clean state), so their limits touch no other test."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app
from tests.conftest import TeamKey, chat_completion_lines, make_team_key

JOB = {"kind": "text", "model": "echo", "prompt": "hello"}


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """The API in-process; each request sends the key of the team it is about."""
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def new_team(db_engine: sa.Engine) -> Callable[..., TeamKey]:
    """A team of this test alone, with the limits given."""

    def make(**limits: Any) -> TeamKey:
        return make_team_key(db_engine, f"quota-{uuid.uuid4().hex[:12]}", **limits)

    return make


def stored(engine: sa.Engine, team: TeamKey) -> dict[str, int]:
    """The team's jobs, batches and files in the database."""
    with engine.connect() as conn:
        return {
            table: conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE team_id = :team"),
                {"team": team.team_id},
            ).scalar_one()
            for table in ("jobs", "batches", "files")
        }


def assert_too_many(response: httpx.Response, code: str, *words: str) -> int:
    """A 429 of this code naming the limit; returns its Retry-After."""
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["type"] == code
    for word in words:
        assert word in error["message"], error["message"]
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1, retry_after
    return int(retry_after)


def batch(count: int) -> dict[str, Any]:
    return {"jobs": [{**JOB, "prompt": f"p{n}"} for n in range(count)]}


def test_max_queued_refuses_jobs_and_batches_past_it(
    api: TestClient, db_engine: sa.Engine, new_team: Callable[..., TeamKey], team: TeamKey
) -> None:
    limited = new_team(max_queued=3)
    for _ in range(2):
        assert api.post("/v1/jobs", json=JOB, headers=limited.headers).status_code == 202
    # 2 queued + 2 would be 4: the whole batch is refused, none of it stored.
    refused = api.post("/v1/batches", json=batch(2), headers=limited.headers)
    assert_too_many(refused, "quota_exceeded", "max_queued", "3", "has 2", "adds 2")
    assert stored(db_engine, limited) == {"jobs": 2, "batches": 0, "files": 0}
    # Exactly to the limit is fine; one more is not.
    assert api.post("/v1/batches", json=batch(1), headers=limited.headers).status_code == 202
    refused = api.post("/v1/jobs", json=JOB, headers=limited.headers)
    assert_too_many(refused, "quota_exceeded", "max_queued", "3")
    assert stored(db_engine, limited) == {"jobs": 3, "batches": 1, "files": 0}
    # Another team is not held back by this one's queue.
    assert api.post("/v1/jobs", json=JOB, headers=team.headers).status_code == 202
    # Finished jobs no longer count: cancel one and there is room again.
    first = api.get("/v1/jobs?limit=1", headers=limited.headers).json()["data"][0]
    api.post(f"/v1/jobs/{first['id']}/cancel", headers=limited.headers).raise_for_status()
    assert api.post("/v1/jobs", json=JOB, headers=limited.headers).status_code == 202


def test_retries_are_held_to_max_queued_and_change_nothing_when_refused(
    api: TestClient, new_team: Callable[..., TeamKey]
) -> None:
    limited = new_team(max_queued=2)
    job = api.post("/v1/jobs", json=JOB, headers=limited.headers).json()
    created = api.post("/v1/batches", json=batch(1), headers=limited.headers).json()
    api.post(f"/v1/jobs/{job['id']}/cancel", headers=limited.headers).raise_for_status()
    api.post(f"/v1/batches/{created['id']}/cancel", headers=limited.headers).raise_for_status()
    # The queue is empty; fill it, then retries would pass the limit.
    for _ in range(2):
        assert api.post("/v1/jobs", json=JOB, headers=limited.headers).status_code == 202
    refused = api.post(f"/v1/jobs/{job['id']}/retry", headers=limited.headers)
    assert_too_many(refused, "quota_exceeded", "max_queued", "2")
    assert api.get(f"/v1/jobs/{job['id']}", headers=limited.headers).json()["status"] == "canceled"
    refused = api.post(
        f"/v1/batches/{created['id']}/retry?include_canceled=true", headers=limited.headers
    )
    assert_too_many(refused, "quota_exceeded", "max_queued", "2")
    after = api.get(f"/v1/batches/{created['id']}", headers=limited.headers).json()
    assert (after["status"], after["counts"]["canceled"]) == ("canceled", 1)


def test_a_batch_larger_than_max_queued_says_to_split_it(
    api: TestClient, db_engine: sa.Engine, new_team: Callable[..., TeamKey]
) -> None:
    limited = new_team(max_queued=2)
    jsonl = "".join(json.dumps({**JOB, "custom_id": f"c{n}"}) + "\n" for n in range(3))
    refused = api.post(
        "/v1/batches",
        content=jsonl,
        headers={**limited.headers, "content-type": "application/x-ndjson"},
    )
    assert_too_many(refused, "quota_exceeded", "max_queued", "3 jobs", "at most 2")
    assert stored(db_engine, limited)["jobs"] == 0


def test_max_queued_applies_to_openai_batches(
    api: TestClient, db_engine: sa.Engine, new_team: Callable[..., TeamKey]
) -> None:
    limited = new_team(max_queued=2)
    uploaded = api.post(
        "/v1/files",
        files={"file": ("in.jsonl", chat_completion_lines(3))},
        data={"purpose": "batch"},
        headers=limited.headers,
    )
    assert uploaded.status_code == 200, uploaded.text
    refused = api.post(
        "/v1/batches",
        json={
            "input_file_id": uploaded.json()["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
        headers=limited.headers,
    )
    assert_too_many(refused, "quota_exceeded", "max_queued")
    assert stored(db_engine, limited) == {"jobs": 0, "batches": 0, "files": 1}


def test_concurrent_submissions_never_pass_max_queued(
    api: TestClient, db_engine: sa.Engine, new_team: Callable[..., TeamKey]
) -> None:
    limited = new_team(max_queued=3)
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: api.post("/v1/jobs", json=JOB, headers=limited.headers).status_code,
                range(8),
            )
        )
    assert sorted(answers) == [202] * 3 + [429] * 5
    assert stored(db_engine, limited)["jobs"] == 3


def test_an_idempotent_retry_is_answered_not_limited(
    api: TestClient, db_engine: sa.Engine, new_team: Callable[..., TeamKey]
) -> None:
    limited = new_team(max_queued=1, rate_per_s=0.01)
    headers = {**limited.headers, "Idempotency-Key": "once"}
    first = api.post("/v1/jobs", json=JOB, headers=headers)
    assert first.status_code == 202
    again = api.post("/v1/jobs", json=JOB, headers=headers)
    assert (again.status_code, again.json()["id"]) == (202, first.json()["id"])
    assert again.headers["idempotent-replayed"] == "true"
    assert stored(db_engine, limited)["jobs"] == 1


def test_rate_limit_is_429_with_retry_after_then_accepts(
    api: TestClient, db_engine: sa.Engine, new_team: Callable[..., TeamKey]
) -> None:
    # One submission per 4 s: a burst of one, then a wait of up to 4 s.
    limited = new_team(rate_per_s=0.25)
    assert api.post("/v1/jobs", json=JOB, headers=limited.headers).status_code == 202
    refused = api.post("/v1/jobs", json=JOB, headers=limited.headers)
    retry_after = assert_too_many(refused, "rate_limited", "rate_per_s", "0.25")
    assert retry_after <= 4
    assert stored(db_engine, limited)["jobs"] == 1
    # Batches and uploads draw on the same bucket, and are refused before being read.
    assert_too_many(api.post("/v1/batches", json=batch(2), headers=limited.headers), "rate_limited")
    upload = api.post(
        "/v1/files",
        files={"file": ("in.jsonl", b"{}\n")},
        data={"purpose": "batch"},
        headers=limited.headers,
    )
    assert_too_many(upload, "rate_limited")
    assert stored(db_engine, limited) == {"jobs": 1, "batches": 0, "files": 0}

    time.sleep(retry_after)
    assert api.post("/v1/jobs", json=JOB, headers=limited.headers).status_code == 202


def test_rate_limits_are_per_team(
    api: TestClient, new_team: Callable[..., TeamKey], team: TeamKey
) -> None:
    first, second = new_team(rate_per_s=0.01), new_team(rate_per_s=0.01)
    assert api.post("/v1/jobs", json=JOB, headers=first.headers).status_code == 202
    assert_too_many(api.post("/v1/jobs", json=JOB, headers=first.headers), "rate_limited")
    assert api.post("/v1/jobs", json=JOB, headers=second.headers).status_code == 202
    # A team without a rate is never limited.
    for _ in range(5):
        assert api.post("/v1/jobs", json=JOB, headers=team.headers).status_code == 202


def test_burst_is_one_seconds_worth(api: TestClient, new_team: Callable[..., TeamKey]) -> None:
    # 3 per second: three at once are accepted (the bucket starts full with three tokens).
    # With a rate under one, the burst is one (the rate limit test above).
    limited = new_team(rate_per_s=3)
    for _ in range(3):
        assert api.post("/v1/jobs", json=JOB, headers=limited.headers).status_code == 202


@pytest.mark.timeout(60)
def test_rate_limit_fails_open_when_redis_is_down(
    settings: Settings,
    db_engine: sa.Engine,
    new_team: Callable[..., TeamKey],
    caplog: pytest.LogCaptureFixture,
) -> None:
    limited = new_team(rate_per_s=0.01)
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(down)) as client, caplog.at_level(logging.WARNING):
        for _ in range(2):
            response = client.post("/v1/jobs", json=JOB, headers=limited.headers)
            assert response.status_code == 202, response.text
    assert stored(db_engine, limited)["jobs"] == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("rate limit" in m and limited.name in m for m in warnings), warnings
