"""Fault tests on real processes: every accepted job reaches exactly one final state with
one set of artifacts, whatever happens to a worker, the broker or the database. Each test
asserts the final counts from the database and the artifact store."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
import redis

from aigc.settings import Settings
from tests.faults.conftest import FaultStack
from tests.live import submit, wait_for_batch, wait_for_job
from workers.celery_app import create_celery_app
from workers.dispatch import Chunk, publish_chunks

pytestmark = pytest.mark.timeout(900)

# Long enough to be caught mid-run: a few seconds per job on this machine.
SLOW_IMAGE = {"width": 512, "height": 512, "steps": 30, "seed": 1}


def text_batch(stack: FaultStack, n: int, tokens: int = 48) -> dict[str, Any]:
    jobs = [
        {
            "kind": "text",
            "prompt": f"Item {i}",
            "params": {"max_new_tokens": tokens, "temperature": 0},
        }
        for i in range(n)
    ]
    response = stack.client.post("/v1/batches", json={"jobs": jobs})
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def wait_for_succeeded(
    stack: FaultStack, batch_id: str, at_least: int, timeout_s: float = 120
) -> None:
    deadline = time.monotonic() + timeout_s
    while stack.client.get(f"/v1/batches/{batch_id}").json()["counts"]["succeeded"] < at_least:
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.1)


def assert_exactly_once(stack: FaultStack, expected_jobs: int, artifacts_per_job: int = 1) -> None:
    assert stack.statuses() == {"succeeded": expected_jobs}
    per_job = stack.artifact_rows_per_job()
    assert len(per_job) == expected_jobs
    assert set(per_job.values()) == {artifacts_per_job}, "a job has no or several artifact sets"
    assert stack.stored_artifacts_match_rows()


def test_kill_9_mid_job_then_another_worker_runs_it_once(fault_stack: FaultStack) -> None:
    fault_stack.start_worker("worker-a")
    job = submit(fault_stack.client, kind="image", prompt="lighthouse", params=SLOW_IMAGE)
    wait_for_job(fault_stack.client, job["id"], timeout_s=120, until={"running"})
    fault_at = time.time()
    fault_stack.kill("worker-a")
    fault_stack.start_worker("worker-b")
    done = wait_for_job(fault_stack.client, job["id"], timeout_s=120)
    fault_stack.report("kill -9 a worker mid-job", 1, fault_at)
    assert done["status"] == "succeeded"
    assert done["attempts"] == 2
    assert len(done["artifacts"]) == 1
    assert_exactly_once(fault_stack, 1)


# The long variants run with `pytest -m slow` (make test leaves them out).
BATCH_SIZES = [200, pytest.param(2000, marks=pytest.mark.slow)]


@pytest.mark.parametrize("jobs", BATCH_SIZES)
def test_kill_9_mid_batch_every_job_succeeds_once(fault_stack: FaultStack, jobs: int) -> None:
    fault_stack.start_worker("worker-a", kinds="text")
    batch = text_batch(fault_stack, jobs)
    wait_for_succeeded(fault_stack, batch["id"], at_least=20)
    fault_at = time.time()
    fault_stack.kill("worker-a")
    fault_stack.start_worker("worker-b", kinds="text")
    final = wait_for_batch(fault_stack.client, batch["id"], timeout_s=600)
    fault_stack.report(f"kill -9 a worker mid-batch ({jobs} jobs)", jobs, fault_at)
    assert final["status"] == "completed"
    assert final["counts"]["succeeded"] == jobs
    assert_exactly_once(fault_stack, jobs)


def test_broker_stopped_during_a_batch_then_restarted(fault_stack: FaultStack) -> None:
    fault_stack.start_worker("worker", kinds="text")
    first = text_batch(fault_stack, 120)
    wait_for_succeeded(fault_stack, first["id"], at_least=10)
    fault_at = time.time()
    fault_stack.valkey.stop()
    # Accepted while the broker is down: stored, answered at once, published later.
    second = text_batch(fault_stack, 30)
    assert fault_stack.client.get("/readyz").status_code == 503
    time.sleep(2)
    fault_stack.valkey.start()
    for batch in (first, second):
        final = wait_for_batch(fault_stack.client, batch["id"], timeout_s=180)
        assert final["counts"]["succeeded"] == final["counts"]["total"]
    fault_stack.report("broker stopped 2 s mid-batch (+30 jobs sent meanwhile)", 150, fault_at)
    assert_exactly_once(fault_stack, 150)


@pytest.mark.parametrize("jobs", [150, pytest.param(2000, marks=pytest.mark.slow)])
def test_broker_emptied_with_flushall_during_a_batch(fault_stack: FaultStack, jobs: int) -> None:
    fault_stack.start_worker("worker", kinds="text")
    batch = text_batch(fault_stack, jobs)
    wait_for_succeeded(fault_stack, batch["id"], at_least=10)
    fault_at = time.time()
    redis.Redis.from_url(fault_stack.env["AIGC_REDIS_URL"]).flushall()
    # The window in Redis is gone: only the dispatcher, returning its jobs to wait and
    # sending the rest, can finish the batch now.
    assert fault_stack.statuses().get("queued", 0) > 0
    final = wait_for_batch(fault_stack.client, batch["id"], timeout_s=600)
    fault_stack.report(f"broker emptied with FLUSHALL mid-batch ({jobs} jobs)", jobs, fault_at)
    assert final["counts"]["succeeded"] == jobs
    assert_exactly_once(fault_stack, jobs)


def test_database_stopped_during_a_batch(fault_stack: FaultStack) -> None:
    fault_stack.start_worker("worker", kinds="text")
    batch = text_batch(fault_stack, 120)
    wait_for_succeeded(fault_stack, batch["id"], at_least=10)
    fault_at = time.time()
    fault_stack.postgres.stop()
    try:
        response = fault_stack.client.get(f"/v1/batches/{batch['id']}")
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "database_unavailable"
        time.sleep(3)
    finally:
        fault_stack.postgres.start()
    final = wait_for_batch(fault_stack.client, batch["id"], timeout_s=180)
    fault_stack.report("PostgreSQL stopped 3 s mid-batch", 120, fault_at)
    assert final["counts"]["succeeded"] == 120
    assert_exactly_once(fault_stack, 120)


def test_same_message_delivered_twice_runs_once(fault_stack: FaultStack) -> None:
    job = submit(fault_stack.client, kind="text", prompt="only once", params={"max_new_tokens": 16})
    app = create_celery_app(Settings(redis_url=fault_stack.env["AIGC_REDIS_URL"]))
    broker = redis.Redis.from_url(fault_stack.env["AIGC_REDIS_URL"])
    deadline = time.monotonic() + 30
    while broker.llen("text.normal") < 1:  # the dispatcher's message (no worker runs yet)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    job_id = __import__("uuid").UUID(job["id"])
    assert publish_chunks(app, [Chunk("text", "normal", (job_id,))]) == 1  # the duplicate
    assert broker.llen("text.normal") == 2
    fault_stack.start_worker("worker", kinds="text")
    done = wait_for_job(fault_stack.client, str(job_id), timeout_s=120)
    deadline = time.monotonic() + 60
    while broker.llen("text.normal") or broker.hlen("unacked"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    fault_stack.report("the same message delivered twice", 1, time.time())
    assert done["attempts"] == 1
    assert fault_stack.client.get(f"/v1/jobs/{job_id}").json()["attempts"] == 1
    assert_exactly_once(fault_stack, 1)


def test_sigterm_mid_batch_exits_cleanly_and_every_job_completes(fault_stack: FaultStack) -> None:
    worker = fault_stack.start_worker("worker-a", kinds="text")
    batch = text_batch(fault_stack, 160)
    wait_for_succeeded(fault_stack, batch["id"], at_least=20)
    fault_at = time.time()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    # It finished or handed back what it held: nothing is left running.
    assert fault_stack.statuses().get("running", 0) == 0
    fault_stack.start_worker("worker-b", kinds="text")
    final = wait_for_batch(fault_stack.client, batch["id"], timeout_s=180)
    fault_stack.report("SIGTERM a worker mid-batch, then start another", 160, fault_at)
    assert final["counts"]["succeeded"] == 160
    assert_exactly_once(fault_stack, 160)
