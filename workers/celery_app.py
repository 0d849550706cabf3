"""The one Celery app and all of its configuration."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from celery import Celery
from kombu import Queue

from aigc.settings import Settings, get_settings
from workers.events import BusyWorkerEvents
from workers.routing import ALL_QUEUES, queue_for

UNACKED_RESTORE_INTERVAL_S = 10  # how often a worker looks for messages to hand out again
# kombu's Redis transport with a channel that drops messages it cannot parse
# (workers.messages); URLs of other schemes keep kombu's own transport.
REDIS_TRANSPORT = "workers.messages:Transport"
REDIS_SCHEMES = frozenset({"redis", "rediss"})


def create_celery_app(settings: Settings) -> Celery:
    broker_url = settings.require_redis_url()
    app = Celery("aigc", broker=broker_url, include=["workers.tasks"])
    timeout = settings.broker_timeout_s
    if urlsplit(broker_url).scheme in REDIS_SCHEMES:
        app.conf.broker_transport = REDIS_TRANSPORT
    app.conf.update(
        # JSON only: messages carry job ids, never pickled objects.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # Job status lives in PostgreSQL; Celery results would only cost a round trip.
        task_ignore_result=True,
        result_backend=None,
        # Ack after the job ran, one message at a time: a worker that dies mid-job leaves its
        # message to be redelivered instead of losing it or hoarding others.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(name) for name in ALL_QUEUES],  # type: ignore[no-untyped-call]
        task_default_queue=queue_for("text"),
        task_create_missing_queues=False,
        # Only aigc.run_jobs runs, and a malformed message is discarded in one log line
        # instead of stopping the worker (workers.messages).
        worker_consumer="workers.messages:WorkerConsumer",
        # Remote control lets anyone who can write to Redis shut workers down or restart
        # their pools: off unless the operator turns it on (Flower's inspect and control
        # tabs need it).
        worker_enable_remote_control=settings.worker_remote_control,
        # Events feed Flower.
        worker_send_task_events=True,
        # No "task-sent" event per publish: it doubles the cost of publishing a large batch,
        # and workers report received/started/succeeded to Flower anyway.
        task_send_sent_event=False,
        broker_connection_retry_on_startup=True,
        # A broker that is down or silent must not hold a submission: connect, read and
        # retry are bounded so a publish fails within a few seconds.
        broker_connection_timeout=timeout,
        broker_transport_options={
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
            # Read queues in the order the worker lists them (high tier first) instead of
            # kombu's default round robin.
            "queue_order_strategy": "priority",
            # A message a dead worker held comes back after this, not Redis' default hour;
            # PostgreSQL's leases and conditional claims make an early redelivery harmless.
            "visibility_timeout": settings.visibility_timeout_s,
            "unacked_restore_interval": UNACKED_RESTORE_INTERVAL_S,
            # kombu scans only every 10th interval by default (every 100 s here).
            "unacked_restore_throttle": 1,
        },
        broker_pool_limit=10,
        worker_hijack_root_logger=False,
    )
    # Heartbeats and task events keep flowing while the solo pool generates (Flower).
    app.steps["consumer"].add(BusyWorkerEvents)
    return app


@lru_cache(maxsize=1)
def get_celery_app() -> Celery:
    """The process's Celery app, built from settings on first use."""
    return create_celery_app(get_settings())
