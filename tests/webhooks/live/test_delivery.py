"""Webhooks end to end: API → dispatcher → worker → job_events → deliverer → a receiver
process that verifies every request with the `standardwebhooks` package, unchanged."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.live import submit, wait_for_batch, wait_for_job
from tests.webhooks.live.conftest import Receiver, WebhookStack, payloads


def _deliveries(stack: WebhookStack, **filters: str) -> list[dict[str, Any]]:
    response = stack.client.get("/v1/webhooks/deliveries", params={"limit": 100, **filters})
    return response.raise_for_status().json()["data"]  # type: ignore[no-any-return]


def _wait_for_deliveries(
    stack: WebhookStack,
    predicate: Callable[[list[dict[str, Any]]], bool],
    timeout_s: float = 30.0,
    **filters: str,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = _deliveries(stack, **filters)
        if predicate(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries: {found}")
        time.sleep(0.1)


def test_a_jobs_webhook_gets_its_completion_signed_with_the_artifact(
    webhook_stack: WebhookStack, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver(webhook_stack.secrets())
    job = submit(
        webhook_stack.client,
        kind="text",
        model="echo",
        prompt="hello hooks",
        webhook=receiver.url,
    )
    assert job["webhook"] == receiver.url and job["webhook_events_filter"] == ["completed"]
    assert wait_for_job(webhook_stack.client, job["id"])["status"] == "succeeded"
    records = receiver.wait_for(lambda r: len(r) >= 1)
    time.sleep(0.5)  # nothing else comes: only `completed` was asked for
    records = receiver.records()
    assert len(records) == 1
    assert records[0]["verified"] == [True] and records[0]["status"] == 200
    assert records[0]["headers"]["webhook-id"].startswith("msg_")
    message = payloads(records)[0]
    assert message["type"] == "job.completed"
    data = message["data"]
    assert data["id"] == job["id"] and data["status"] == "succeeded"
    assert data["kind"] == "text" and data["model"] == "echo"
    [artifact] = data["artifacts"]
    # The signed URL downloads the artifact without a key.
    content = httpx.get(artifact["url"], timeout=10).raise_for_status().content
    assert (
        hashlib.sha256(content).hexdigest() == artifact["sha256"] == data["artifacts"][0]["sha256"]
    )
    [delivery] = _wait_for_deliveries(
        webhook_stack, lambda d: bool(d) and d[0]["status"] == "delivered", job_id=job["id"]
    )
    assert delivery["attempts"] == 1 and delivery["endpoint_id"] is None
    assert delivery["msg_id"] == records[0]["headers"]["webhook-id"]
    [attempt] = delivery["attempt_history"]
    assert attempt["status_code"] == 200 and attempt["response_snippet"] == "ok"
    assert attempt["latency_ms"] > 0


def test_a_job_can_ask_for_its_start_too(
    webhook_stack: WebhookStack, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver(webhook_stack.secrets())
    job = submit(
        webhook_stack.client,
        kind="text",
        model="echo",
        prompt="all of it",
        webhook=receiver.url,
        webhook_events_filter=["start", "completed"],
    )
    wait_for_job(webhook_stack.client, job["id"])
    records = receiver.wait_for(lambda r: len(r) >= 2)
    # Two messages, each on its own: they may arrive in either order.
    assert sorted(m["type"] for m in payloads(records)) == ["job.completed", "job.started"]
    assert all(record["verified"] == [True] for record in records)
    assert len({record["headers"]["webhook-id"] for record in records}) == 2


def test_a_batch_gets_each_jobs_completion_and_its_own(
    webhook_stack: WebhookStack, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver(webhook_stack.secrets())
    response = webhook_stack.client.post(
        "/v1/batches",
        json={
            "jobs": [
                {"custom_id": f"c{n}", "kind": "text", "model": "echo", "prompt": f"line {n}"}
                for n in range(3)
            ],
            "webhook": receiver.url,
            "webhook_events_filter": ["job_completed", "completed"],
        },
    )
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["webhook"] == receiver.url
    assert wait_for_batch(webhook_stack.client, batch["id"])["status"] == "completed"
    records = receiver.wait_for(lambda r: len(r) >= 4)
    time.sleep(0.5)
    records = receiver.records()
    messages = payloads(records)
    assert len(messages) == 4 and all(r["verified"] == [True] for r in records)
    jobs = [m for m in messages if m["type"] == "job.completed"]
    assert sorted(m["data"]["custom_id"] for m in jobs) == ["c0", "c1", "c2"]
    assert all(m["data"]["batch_id"] == batch["id"] for m in jobs)
    [done] = [m for m in messages if m["type"] == "batch.completed"]
    assert done["data"]["id"] == batch["id"] and done["data"]["status"] == "completed"
    assert done["data"]["counts"]["succeeded"] == 3 and done["data"]["counts"]["total"] == 3
    assert len({r["headers"]["webhook-id"] for r in records}) == 4


def test_a_team_endpoint_gets_the_types_it_subscribed_to(
    webhook_stack: WebhookStack, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver(webhook_stack.secrets())
    response = webhook_stack.client.post(
        "/v1/webhooks", json={"url": receiver.url, "events": ["job.completed"]}
    )
    assert response.status_code == 201, response.text
    endpoint = response.json()
    job = submit(webhook_stack.client, kind="text", model="echo", prompt="no own webhook")
    wait_for_job(webhook_stack.client, job["id"])
    [record] = receiver.wait_for(lambda r: len(r) >= 1)
    assert record["verified"] == [True]
    assert payloads([record])[0]["data"]["id"] == job["id"]
    [delivery] = _wait_for_deliveries(
        webhook_stack, lambda d: len(d) == 1, endpoint_id=endpoint["id"]
    )
    assert delivery["endpoint_id"] == endpoint["id"] and delivery["job_id"] == job["id"]
    # Disabled, it gets nothing more.
    webhook_stack.client.patch(
        f"/v1/webhooks/{endpoint['id']}", json={"enabled": False}
    ).raise_for_status()
    second = submit(webhook_stack.client, kind="text", model="echo", prompt="not sent")
    wait_for_job(webhook_stack.client, second["id"])
    time.sleep(1.0)
    assert len(receiver.records()) == 1


def test_during_a_rotation_both_secrets_verify(
    webhook_stack: WebhookStack, start_receiver: Callable[..., Receiver]
) -> None:
    [old] = webhook_stack.secrets()
    rotated = webhook_stack.client.post("/v1/webhooks/secret/rotate").raise_for_status().json()
    new = rotated["data"][0]["secret"]
    assert [entry["secret"] for entry in rotated["data"]] == [new, old]
    assert rotated["data"][0]["expires_at"] is None and rotated["data"][1]["expires_at"]
    # A receiver that knows both secrets checks each one alone.
    receiver = start_receiver([old, new])
    job = submit(
        webhook_stack.client, kind="text", model="echo", prompt="rotated", webhook=receiver.url
    )
    wait_for_job(webhook_stack.client, job["id"])
    [record] = receiver.wait_for(lambda r: len(r) >= 1)
    assert record["verified"] == [True, True]
    assert len(record["headers"]["webhook-signature"].split(" ")) == 2


def test_a_flaky_receiver_gets_it_after_retries_and_a_redelivery_repeats_it(
    webhook_stack: WebhookStack, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver(webhook_stack.secrets(), "--fail-first", "2")
    job = submit(
        webhook_stack.client, kind="text", model="echo", prompt="retry me", webhook=receiver.url
    )
    wait_for_job(webhook_stack.client, job["id"])
    records = receiver.wait_for(lambda r: len(r) >= 3)
    assert [r["status"] for r in records] == [500, 500, 200]
    assert len({r["headers"]["webhook-id"] for r in records}) == 1  # the same message
    [delivery] = _wait_for_deliveries(
        webhook_stack, lambda d: bool(d) and d[0]["status"] == "delivered", job_id=job["id"]
    )
    history = delivery["attempt_history"]
    assert delivery["attempts"] == 3
    assert [a["status_code"] for a in history] == [500, 500, 200]
    assert history[0]["response_snippet"] == "flaky receiver says no"
    assert history[0]["error"] == "HTTP 500"
    assert all(a["latency_ms"] > 0 for a in history)

    response = webhook_stack.client.post(f"/v1/webhooks/deliveries/{delivery['id']}/redeliver")
    assert response.status_code == 202, response.text
    records = receiver.wait_for(lambda r: len(r) >= 4)
    assert records[3]["status"] == 200 and records[3]["verified"] == [True]
    assert records[3]["headers"]["webhook-id"] == delivery["msg_id"]
    [again] = _wait_for_deliveries(
        webhook_stack,
        lambda d: bool(d) and d[0]["status"] == "delivered" and d[0]["attempts"] == 4,
        job_id=job["id"],
    )
    assert len(again["attempt_history"]) == 4


def test_a_dead_receiver_slows_no_job(
    webhook_stack: WebhookStack, start_receiver: Callable[..., Receiver]
) -> None:
    """A receiver that accepts connections and never answers: jobs finish as fast as
    without a webhook, and the delivery records timeouts while it is retried."""
    receiver = start_receiver(webhook_stack.secrets(), "--hang")
    started = time.monotonic()
    jobs = [
        submit(
            webhook_stack.client,
            kind="text",
            model="echo",
            prompt=f"dead {n}",
            webhook=receiver.url,
        )
        for n in range(5)
    ]
    for job in jobs:
        assert wait_for_job(webhook_stack.client, job["id"], timeout_s=15)["status"] == "succeeded"
    elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed
    found = _wait_for_deliveries(
        webhook_stack,
        lambda d: len(d) == 5 and all(x["attempt_history"] for x in d),
        timeout_s=20,
    )
    for delivery in found:
        assert delivery["status"] in ("pending", "delivering")
        assert delivery["attempt_history"][0]["error"].startswith("timeout")
        assert delivery["attempt_history"][0]["status_code"] is None
