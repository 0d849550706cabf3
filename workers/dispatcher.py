"""The dispatcher: PostgreSQL's jobs table is the outbox, and this loop makes the broker
match it. Each round it

1. returns jobs whose worker died (lease expired) to the queue, or fails them with
   worker_lost after max_attempts, and republishes the requeued ones;
2. republishes queued jobs the broker does not hold: a publish that failed (broker down at
   submit time), a process that died between commit and publish, a broker restarted
   without its data or emptied with FLUSHALL;
3. forgets idempotency keys past their lifetime.

Any number of dispatchers may run; a PostgreSQL advisory lock lets one work at a time.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from celery import Celery
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from aigc.settings import Settings
from db import idempotency as idempotency_queries
from db import jobs as job_queries
from db.session import try_advisory_lock
from workers.dispatch import JobRef, chunk_jobs, publish_chunks
from workers.routing import ALL_QUEUES

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 727275  # pg_advisory_lock key: one active dispatcher per database
STALE_SCAN_LIMIT = 50_000  # queued jobs compared with the broker per round
UNACKED_KEY = "unacked"  # kombu's hash of delivered, unacknowledged messages


@dataclass
class RoundReport:
    reaped: int = 0
    republished: int = 0
    expired_keys: int = 0


def job_ids_in_message(raw: bytes | str) -> list[str]:
    """The job ids a Celery message on the broker carries (protocol 2, JSON body)."""
    try:
        message = json.loads(raw)
        if isinstance(message, list):  # kombu's unacked entries: [message, exchange, key]
            message = message[0]
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return [str(job_id) for job_id in args[0]]
    except (ValueError, KeyError, IndexError, TypeError):
        return []  # not one of ours


def ids_held_by_broker(broker: Redis) -> set[str]:
    """Every job id in a queue or delivered and not yet acknowledged."""
    held: set[str] = set()
    for queue in ALL_QUEUES:
        for raw in broker.lrange(queue, 0, -1):
            held.update(job_ids_in_message(raw))
    for raw in broker.hvals(UNACKED_KEY):
        held.update(job_ids_in_message(raw))
    return held


def _refs(jobs: Iterable[Any]) -> list[JobRef]:
    return [JobRef.of(job) for job in jobs]


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        session_factory: sessionmaker[Session],
        celery: Celery,
        broker: Redis,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.session_factory = session_factory
        self.celery = celery
        self.broker = broker

    def run_round(self) -> RoundReport:
        report = RoundReport()
        with self.session_factory.begin() as session:
            requeued = job_queries.reap_expired_leases(
                session, max_attempts=self.settings.max_attempts
            )
            requeued_refs = _refs(requeued)
        if requeued_refs:
            log.warning("%d jobs lost their worker; requeued", len(requeued_refs))
            # Their earlier message was consumed by the dead worker: always send anew.
            publish_chunks(self.celery, chunk_jobs(requeued_refs, self.settings.chunk_sizes))
            report.reaped = len(requeued_refs)
        report.republished = self._republish_missing()
        with self.session_factory.begin() as session:
            report.expired_keys = idempotency_queries.purge_expired(
                session, ttl_s=self.settings.idempotency_ttl_s
            )
        return report

    def _republish_missing(self) -> int:
        with self.session_factory() as session:
            stale = _refs(
                job_queries.stale_queued_jobs(
                    session, older_than_s=self.settings.dispatch_grace_s, limit=STALE_SCAN_LIMIT
                )
            )
        if not stale:
            return 0
        # Read the broker after the database: a job published in between is seen as held.
        held = ids_held_by_broker(self.broker)
        missing = [ref for ref in stale if str(ref.id) not in held]
        if not missing:
            return 0
        sent = publish_chunks(self.celery, chunk_jobs(missing, self.settings.chunk_sizes))
        if sent:
            with self.session_factory.begin() as session:
                # Restart their grace so the next round does not race the workers.
                job_queries.restart_grace(session, [ref.id for ref in missing])
            log.warning("republished %d queued jobs the broker did not hold", len(missing))
        return len(missing) if sent else 0

    def run_forever(self, stop: threading.Event) -> None:
        """Rounds every dispatch interval while holding the leader lock, until `stop`."""
        interval = self.settings.dispatch_interval_s
        while not stop.is_set():
            try:
                with self.engine.connect() as lock_conn:
                    if not try_advisory_lock(lock_conn, LEADER_LOCK_KEY):
                        stop.wait(interval)
                        continue
                    log.info("dispatcher is the leader")
                    while not stop.is_set():
                        report = self.run_round()
                        if report.reaped or report.republished:
                            log.info("dispatch round: %s", report)
                        stop.wait(interval)
            except Exception as exc:
                # Database or broker down: keep trying; nothing is lost meanwhile.
                log.warning("dispatch round failed: %s: %s", type(exc).__name__, exc)
                stop.wait(interval)


def run_dispatcher(settings: Settings, stop: threading.Event | None = None) -> None:
    from aigc.connections import broker_client, database_engine
    from db.session import make_session_factory
    from workers.celery_app import create_celery_app

    engine = database_engine(settings)
    dispatcher = Dispatcher(
        settings,
        engine,
        make_session_factory(engine),
        create_celery_app(settings),
        broker_client(settings),
    )
    dispatcher.run_forever(stop or threading.Event())
