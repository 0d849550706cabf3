"""Reading the job ids out of a broker message (what the dispatcher compares with the jobs
table): our own messages, as kombu stores them in Redis, and anything else."""

from __future__ import annotations

import base64
import json
import uuid

from workers.dispatcher import job_ids_in_message
from workers.routing import RUN_JOBS_TASK

IDS = [str(uuid.uuid4()), str(uuid.uuid4())]


def _message(args: object, *, base64_body: bool = True) -> dict[str, object]:
    """A Celery protocol-2 message as kombu's Redis transport stores it."""
    body = json.dumps([args, {}, {"callbacks": None, "errbacks": None, "chain": None}])
    return {
        "body": base64.b64encode(body.encode()).decode() if base64_body else body,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"lang": "py", "task": RUN_JOBS_TASK, "id": str(uuid.uuid4())},
        "properties": {
            "body_encoding": "base64" if base64_body else "utf-8",
            "delivery_info": {"exchange": "", "routing_key": "text.normal"},
            "delivery_tag": str(uuid.uuid4()),
        },
    }


def test_ids_of_a_queued_message() -> None:
    assert job_ids_in_message(json.dumps(_message([IDS]))) == IDS
    assert job_ids_in_message(json.dumps(_message([IDS])).encode()) == IDS


def test_ids_of_a_delivered_unacknowledged_message() -> None:
    # kombu's "unacked" hash holds [message, exchange, routing key].
    entry = json.dumps([_message([IDS]), "", "text.normal"])
    assert job_ids_in_message(entry) == IDS


def test_a_body_not_base64_encoded() -> None:
    assert job_ids_in_message(json.dumps(_message([IDS], base64_body=False))) == IDS


def test_anything_else_carries_no_ids() -> None:
    for raw in (
        b"\xff\xfe not json",
        "",
        "null",
        "42",
        "[]",
        json.dumps({"body": "!!! not base64"}),
        json.dumps({"no": "body"}),
        json.dumps(_message([])),
        json.dumps(_message(None)),
    ):
        assert job_ids_in_message(raw) == [], raw
