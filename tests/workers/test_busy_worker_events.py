"""A worker busy generating still looks alive, with its task, to Flower and to any event
receiver; and Flower asks for credentials except on /metrics and /healthcheck."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from celery import Celery
from fastapi.testclient import TestClient

from aigc.cli.stack import spawn, stop_process, wait_for_http
from aigc.settings import Settings
from aigc.vocab import JobStatus
from api.main import create_app
from tests.conftest import TeamKey
from tests.live import isolated_broker, started_worker, wait_for_job
from workers.celery_app import create_celery_app

FLOWER_AUTH = ("ops", "not-a-real-secret")
HEARTBEAT_S = 1  # the worker's heartbeat interval here, so a short job spans several
# A job that keeps the tiny image model busy for several heartbeat intervals on a CPU.
LONG_IMAGE_JOB = {
    "kind": "image",
    "model": "tiny-image",
    "prompt": "a long one",
    "params": {"width": 128, "height": 128, "steps": 40},
}


class EventLog:
    """Events from the broker, as `celery events` sees them, kept with what the job's
    status was when each arrived."""

    def __init__(self, app: Celery, job_status: Callable[[], str | None]) -> None:
        self.app = app
        self.job_status = job_status
        self.seen: list[tuple[dict[str, Any], str | None]] = []
        self.ready = threading.Event()
        self._receiver: Any = None

    def _on_event(self, event: dict[str, Any]) -> None:
        self.ready.set()
        self.seen.append((event, self.job_status()))

    def run(self) -> None:
        with self.app.connection_for_read() as connection:
            self._receiver = self.app.events.Receiver(connection, handlers={"*": self._on_event})
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True

    def of(self, kind: str, hostname_prefix: str) -> list[tuple[dict[str, Any], str | None]]:
        return [
            (event, status)
            for event, status in self.seen
            if event["type"] == kind and event.get("hostname", "").startswith(hostname_prefix)
        ]


@contextmanager
def receiving(app: Celery, job_status: Callable[[], str | None]) -> Iterator[EventLog]:
    events = EventLog(app, job_status)
    thread = threading.Thread(target=events.run, daemon=True)
    thread.start()
    try:
        yield events
    finally:
        events.stop()
        thread.join(timeout=10)


@contextmanager
def started_flower(settings: Settings, port: int) -> Iterator[str]:
    env = dict(
        os.environ,
        AIGC_REDIS_URL=settings.redis_url or "",
        AIGC_FLOWER_BASIC_AUTH=":".join(FLOWER_AUTH),
    )
    flower = spawn("flower", ["flower", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthcheck", 60, flower)
        yield url
    finally:
        stop_process(flower)


@pytest.mark.timeout(400)
def test_busy_worker_stays_online_with_its_task(
    team: TeamKey,
    settings: Settings,
    db_engine: sa.Engine,
    tiny_models: Path,
    free_port: Callable[[], int],
) -> None:
    def job_status() -> str | None:
        # The test's only job, read straight from the table: no id needed, so an event
        # that arrives before the submission returns is judged too.
        with db_engine.connect() as conn:
            status = conn.execute(sa.text("SELECT status FROM jobs")).scalar_one_or_none()
        return None if status is None else str(status)

    with (
        isolated_broker(settings) as isolated,
        TestClient(create_app(isolated), headers=team.headers) as client,
    ):
        job_id: list[str] = []

        celery = create_celery_app(isolated)
        with (
            started_flower(isolated, free_port()) as flower_url,
            receiving(celery, job_status) as events,
            started_worker(
                isolated, tiny_models, "image", AIGC_WORKER_HEARTBEAT_S=str(HEARTBEAT_S)
            ),
            httpx.Client(base_url=flower_url, timeout=10) as flower,
        ):
            # Credentials everywhere but the scrape and health endpoints.
            assert flower.get("/workers").status_code == 401
            assert flower.get("/api/workers").status_code == 401
            assert flower.get("/workers", auth=("ops", "wrong")).status_code == 401
            metrics = flower.get("/metrics")
            assert metrics.status_code == 200 and "flower_" in metrics.text
            assert flower.get("/healthcheck").status_code == 200

            # The receiver is subscribed once it has seen the idle worker's own heartbeat.
            assert events.ready.wait(60)
            job_id.append(client.post("/v1/jobs", json=LONG_IMAGE_JOB).json()["id"])
            started = time.monotonic()
            flower_saw: list[dict[str, Any]] = []
            while (status := job_status()) not in {JobStatus.SUCCEEDED, JobStatus.FAILED}:
                workers = flower.get("/workers?json=1", auth=FLOWER_AUTH).json()["data"]
                tasks = flower.get("/api/tasks", auth=FLOWER_AUTH).json()
                if job_status() == JobStatus.RUNNING == status:
                    flower_saw.append({"workers": workers, "tasks": tasks})
                time.sleep(0.2)
            duration_s = time.monotonic() - started
            assert wait_for_job(client, job_id[0])["status"] == JobStatus.SUCCEEDED

        busy_beats = [
            event
            for event, status in events.of("worker-heartbeat", "image-")
            if event["active"] >= 1 and status == JobStatus.RUNNING
        ]
        print(f"job ran {duration_s:.1f}s; {len(busy_beats)} heartbeats with an active task")
        # Without heartbeats from a busy worker, none could report an active task.
        assert busy_beats
        # "task-started" reached receivers before the job was over, not after.
        started_events = events.of("task-started", "image-")
        assert started_events and started_events[0][1] in {JobStatus.QUEUED, JobStatus.RUNNING}
        received = events.of("task-received", "image-")
        assert received and received[0][0]["args"] == f"image job {job_id[0]}"

        # What an operator sees in Flower while the job runs: the worker online, one task
        # active, and the task started with the job's kind in its arguments.
        assert any(
            worker["hostname"].startswith("image-") and worker["status"] and worker["active"]
            for seen in flower_saw
            for worker in seen["workers"]
        ), flower_saw[-1:]
        assert any(
            task["state"] == "STARTED" and task["args"] == f"image job {job_id[0]}"
            for seen in flower_saw
            for task in seen["tasks"].values()
        ), flower_saw[-1:]
