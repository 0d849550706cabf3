"""The throughput and latency baselines: a minimal Celery app whose tasks do nothing but count
themselves in Redis, or note when they started (no result backend).
`python -m benchmarks.noop_app REDIS_URL` runs its worker."""

from __future__ import annotations

import os
import sys
import time

import redis
from celery import Celery

from aigc.settings import Settings
from workers.celery_app import create_celery_app

NOOP_TASK = "bench.noop"
STAMP_TASK = "bench.noop_stamp"
QUEUE = "bench.noop"
COUNTER_KEY = "bench:noop:done"
STARTED_KEY = "bench:noop:started"  # a list of time.time() at each stamp task's start
MIRRORED_SETTINGS = (
    "task_serializer",
    "accept_content",
    "task_ignore_result",
    "result_backend",
    "task_acks_late",
    "task_reject_on_worker_lost",
    "worker_prefetch_multiplier",
    "worker_send_task_events",
    "task_send_sent_event",
    "broker_connection_retry_on_startup",
    "broker_transport_options",
)


def create_app(redis_url: str) -> Celery:
    app = Celery("bench_noop", broker=redis_url)
    # aigc's own delivery settings, read from its app so they stay in step: the comparison is
    # one message per job against aigc's chunks, not a laxer acknowledgement mode.
    aigc = create_celery_app(Settings(redis_url=redis_url)).conf
    app.conf.update({name: aigc[name] for name in MIRRORED_SETTINGS})
    app.conf.update(task_default_queue=QUEUE, worker_hijack_root_logger=False)
    counter = redis.Redis.from_url(redis_url)

    @app.task(name=NOOP_TASK)
    def noop() -> None:
        counter.incr(COUNTER_KEY)

    @app.task(name=STAMP_TASK)
    def noop_stamp() -> None:
        counter.rpush(STARTED_KEY, repr(time.time()))

    return app


def main(redis_url: str) -> None:
    # The worker options `aigc worker` uses: solo pool, task events, a log line per task.
    create_app(redis_url).worker_main(
        [
            "worker",
            "--pool=solo",
            f"--queues={QUEUE}",
            f"--hostname=noop-{os.getpid()}@%h",
            "--loglevel=INFO",
            "--task-events",
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1])
