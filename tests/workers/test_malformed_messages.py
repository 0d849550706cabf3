"""Whatever is pushed onto our Redis queues, a worker discards what it cannot use in one log
line and goes on serving; Celery's built-in tasks and remote control do nothing."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from aigc.settings import Settings
from aigc.vocab import JobStatus
from api.main import create_app
from tests.conftest import TeamKey
from tests.live import isolated_broker, started_worker, wait_for_job
from workers.celery_app import create_celery_app
from workers.routing import RUN_JOBS_TASK

DISCARD_LINE = re.compile(r"dropped a malformed|discarded a")
CRASH_SIGNS = ("Unrecoverable error", "Connection to broker lost", "Traceback")


def _b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def _envelope(
    body: str,
    *,
    queue: str,
    headers: Any = None,
    properties: Any = None,
    content_type: str = "application/json",
) -> str:
    """A kombu Redis message as the transport stores it, with our task's headers unless
    told otherwise."""
    task_headers = {"lang": "py", "task": RUN_JOBS_TASK, "id": str(uuid.uuid4()), "retries": 0}
    return json.dumps(
        {
            "body": body,
            "content-encoding": "utf-8",
            "content-type": content_type,
            "headers": task_headers if headers is None else headers,
            "properties": properties
            if properties is not None
            else {
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
                "delivery_info": {"exchange": "", "routing_key": queue},
            },
        }
    )


def _task_body(*args: Any, kwargs: Any = None, embed: Any = None) -> str:
    return _b64([list(args), kwargs or {}, embed or {}])


def _bad_messages(queue: str) -> dict[str, str]:
    a_job = [str(uuid.uuid4())]
    return {
        "not JSON": "not json {",
        "JSON that is not an object": "[1, 2]",
        "envelope without properties": json.dumps({"body": _task_body(a_job)}),
        "envelope without a delivery tag": _envelope(
            _task_body(a_job), queue=queue, properties={"body_encoding": "base64"}
        ),
        "body that is not base64": _envelope("!!!not base64!!!", queue=queue),
        "unknown body encoding": _envelope(
            "abc", queue=queue, properties={"body_encoding": "rot13", "delivery_tag": "x"}
        ),
        "headers that are a list": _envelope(_task_body(a_job), queue=queue, headers=[1]),
        "no headers (protocol 1 without a task)": json.dumps(
            {
                "body": _task_body(a_job),
                "content-type": "application/json",
                "content-encoding": "utf-8",
                "properties": {"body_encoding": "base64", "delivery_tag": "y"},
            }
        ),
        "task name that is a list": _envelope(
            _task_body(a_job), queue=queue, headers={"task": ["x"], "id": "1"}
        ),
        "unknown task name": _envelope(
            _task_body(a_job), queue=queue, headers={"task": "no.such.task", "id": "2"}
        ),
        "body that is not JSON": _envelope(base64.b64encode(b"{{{").decode(), queue=queue),
        "pickle": _envelope(
            base64.b64encode(b"\x80\x04K\x01.").decode(),
            queue=queue,
            content_type="application/x-python-serialize",
        ),
        "body that is not [args, kwargs, embed]": _envelope(_b64({"a": 1}), queue=queue),
        "kwargs that are a list": _envelope(_b64([[a_job], [1], {}]), queue=queue),
        "args that are a string": _envelope(_task_body("abc"), queue=queue),
        "ids that are not UUIDs": _envelope(_task_body(["not-a-uuid", 7]), queue=queue),
        "unexpected keyword arguments": _envelope(
            _task_body(a_job, kwargs={"evil": 1}), queue=queue
        ),
        "time limit header of the wrong shape": _envelope(
            _task_body(a_job),
            queue=queue,
            headers={"task": RUN_JOBS_TASK, "id": "3", "timelimit": "x"},
        ),
    }


def _wait_until_empty(client: redis.Redis, keys: list[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while any(client.llen(key) for key in keys) or client.hlen("unacked"):
        assert time.monotonic() < deadline, {key: client.llen(key) for key in keys}
        time.sleep(0.1)


@pytest.mark.timeout(300)
def test_malformed_messages_are_discarded_and_the_worker_serves_on(
    team: TeamKey, settings: Settings, tiny_models: Path, tmp_path: Path
) -> None:
    queues = ["text.high", "text.normal", "text.low", "image.low"]
    with (
        isolated_broker(settings) as isolated,
        TestClient(create_app(isolated), headers=team.headers) as client,
    ):
        broker = redis.Redis.from_url(isolated.redis_url or "")
        pushed = 0
        for queue in queues:
            for raw in _bad_messages(queue).values():
                broker.lpush(queue, raw)
                pushed += 1
        # kombu's record of delivered, unacknowledged messages, restored by a periodic sweep.
        # (An entry [message, exchange, key] whose message is not an object kombu removes
        # itself, with a traceback.)
        unacked = {"junk": "not json", "short": "[1]", "object": '{"a": 1}'}
        for tag, raw in unacked.items():
            broker.hset("unacked", tag, raw)
            broker.zadd("unacked_index", {tag: 0})
            pushed += 1
        with started_worker(isolated, tiny_models, "text,image", log_dir=tmp_path) as worker:
            job = client.post("/v1/jobs", json={"kind": "text", "model": "echo", "prompt": "1"})
            assert wait_for_job(client, job.json()["id"])["status"] == JobStatus.SUCCEEDED
            _wait_until_empty(broker, queues)
            # After every bad message was handled, the same process still serves.
            job = client.post("/v1/jobs", json={"kind": "text", "model": "echo", "prompt": "2"})
            assert wait_for_job(client, job.json()["id"])["status"] == JobStatus.SUCCEEDED
            assert worker.poll() is None
        broker.close()

    log = (tmp_path / "worker.log").read_text()
    discards = [line for line in log.splitlines() if DISCARD_LINE.search(line)]
    assert len(discards) == pushed, "\n".join(discards)
    for sign in CRASH_SIGNS:
        assert sign not in log, log


@pytest.mark.timeout(300)
def test_builtin_tasks_and_remote_control_do_nothing(
    team: TeamKey, settings: Settings, tiny_models: Path, tmp_path: Path
) -> None:
    builtins = {"celery.accumulate": [1, 2], "celery.backend_cleanup": [], "celery.ping": []}
    with (
        isolated_broker(settings) as isolated,
        TestClient(create_app(isolated), headers=team.headers) as client,
    ):
        celery = create_celery_app(isolated)
        with started_worker(isolated, tiny_models, log_dir=tmp_path) as worker:
            job = client.post("/v1/jobs", json={"kind": "text", "model": "echo", "prompt": "up"})
            assert wait_for_job(client, job.json()["id"])["status"] == JobStatus.SUCCEEDED
            for name, args in builtins.items():
                celery.send_task(name, args=args, queue="text.normal")
            celery.control.broadcast("pool_restart", arguments={"reload": True})
            celery.control.broadcast("shutdown")
            job = client.post("/v1/jobs", json={"kind": "text", "model": "echo", "prompt": "on"})
            assert wait_for_job(client, job.json()["id"])["status"] == JobStatus.SUCCEEDED
            assert worker.poll() is None
        log = (tmp_path / "worker.log").read_text()
        for name in builtins:
            assert f"discarded a broker message (task '{name}'" in log, log
            assert f"Task {name}[" not in log, log
        assert "shutdown" not in log.lower().replace("warm shutdown", ""), log

        # The control: with remote control turned on, the same broadcast stops a worker.
        with started_worker(isolated, tiny_models, AIGC_WORKER_REMOTE_CONTROL="true") as controlled:
            deadline = time.monotonic() + 60
            while not celery.control.ping(timeout=0.5):
                assert time.monotonic() < deadline, "the worker never answered a ping"
            celery.control.broadcast("shutdown")
            assert controlled.wait(timeout=60) is not None
