"""The dispatcher: PostgreSQL is the queue and the broker holds a window of it.

A job is accepted as a row (`queued`, `dispatched_at` NULL: waiting) and the submitting
transaction NOTIFYs the dispatcher; nothing is published by the API. The dispatcher leader
keeps at most `dispatch_window` messages waiting in the broker per kind, choosing each next
chunk by the teams' fair share (workers.fair_share) and, within a team, high before normal
before low, and marks the chunk's jobs dispatched before it publishes them. Workers claim
them as before; a claim (a place free in the window) or an outcome (a place free under a
team's max_running) NOTIFYs it again, so an idle system starts a job within milliseconds.

Every `dispatch_interval_s` it also
1. returns jobs whose worker died (lease expired) to waiting, or fails them with
   worker_lost after max_attempts;
2. returns dispatched jobs the broker does not hold (a publish that failed, a broker
   restarted without its data or emptied with FLUSHALL) to waiting: the window is rebuilt
   from PostgreSQL;
3. forgets idempotency keys past their lifetime;
4. deletes the bytes of artifacts, files and batch results past their retention, a
   bounded batch of each (`retention_sweep_rows`), and marks their rows (db.retention).

Any number of dispatchers may run; a PostgreSQL advisory lock lets one lead at a time.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass

from celery import Celery
from redis import Redis
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from aigc.moderation import Match, Stage
from aigc.settings import Settings
from aigc.storage import ArtifactStore, open_store
from aigc.vocab import KINDS
from db import audit
from db import dispatch_queue as queue_queries
from db import idempotency as idempotency_queries
from db import jobs as job_queries
from db import moderation as moderation_queries
from db import retention as retention_queries
from workers.dispatch import Chunk, publish_chunks
from workers.fair_share import FairShare
from workers.leadership import lead_while_locked
from workers.metrics import (
    DISPATCHED_JOBS,
    JOBS_BLOCKED,
    JOBS_RETURNED,
    serve_dispatcher_metrics,
)
from workers.moderation import RulesCache, classifier, file_rules
from workers.routing import ALL_QUEUES

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 727275  # pg_advisory_lock key: one active dispatcher per database
LOST_SCAN_LIMIT = 50_000  # dispatched, unclaimed jobs compared with the broker per round
UNACKED_KEY = "unacked"  # kombu's hash of delivered, unacknowledged messages
# Seconds the retention sweep rests after the store could not be reached: deleting can
# wait, dispatching cannot, and each try may cost the store's timeouts.
SWEEP_PAUSE_S = 60.0


@dataclass
class RoundReport:
    reaped: int = 0
    returned: int = 0
    expired_keys: int = 0
    # Artifacts, files and batch results whose bytes the retention sweep deleted.
    expired_objects: int = 0
    dispatched: int = 0


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
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return []  # not one of ours, or malformed: it must not stop a dispatch round


def ids_held_by_broker(broker: Redis) -> set[str]:
    """Every job id in a queue or delivered and not yet acknowledged."""
    held: set[str] = set()
    for queue in ALL_QUEUES:
        for raw in broker.lrange(queue, 0, -1):
            held.update(job_ids_in_message(raw))
    for raw in broker.hvals(UNACKED_KEY):
        held.update(job_ids_in_message(raw))
    return held


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        session_factory: sessionmaker[Session],
        celery: Celery,
        broker: Redis,
        store: ArtifactStore | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.session_factory = session_factory
        self.celery = celery
        self.broker = broker
        # Where expired bytes are deleted from: the store the settings name, unless given.
        self.store = store or open_store(settings)
        self.shares: dict[str, FairShare] = {kind: FairShare() for kind in KINDS}
        # Whether this one holds the leader lock now (only the leader reports the queues).
        self.leading = False
        self._sweep_paused_until = 0.0
        # Prompts are checked against these before a chunk goes to the broker.
        self.moderation = RulesCache(file_rules(settings), classifier(settings))

    def chunk_size(self, model: str, kind: str) -> int:
        sizes = self.settings.chunk_sizes
        return max(1, sizes.get(model, sizes.get(kind, 1)))

    def refill(self) -> int:
        """Top up each kind's window in the broker from the jobs waiting in PostgreSQL;
        returns the chunks sent. Stops at the first broker error (the jobs of the chunk
        that failed wait again)."""
        backlog = self._messages_waiting()
        with self.session_factory() as session:
            self.moderation.refresh(
                lambda known: (
                    None
                    if (version := moderation_queries.rules_version(session)) == known
                    else (version, moderation_queries.enabled_rules(session))
                )
            )
        sent = 0
        for kind in KINDS:
            room = self.settings.dispatch_window - backlog[kind]
            if room > 0:
                sent += self._refill_kind(kind, room)
        return sent

    def _messages_waiting(self) -> dict[str, int]:
        """Messages in each kind's queues that no worker has taken yet."""
        pipeline = self.broker.pipeline(transaction=False)
        for queue in ALL_QUEUES:
            pipeline.llen(queue)
        waiting: dict[str, int] = dict.fromkeys(KINDS, 0)
        for queue, length in zip(ALL_QUEUES, pipeline.execute(), strict=True):
            waiting[queue.split(".")[0]] += int(length)
        return waiting

    def _refill_kind(self, kind: str, room: int) -> int:
        share = self.shares[kind]
        with self.session_factory() as session:
            teams = queue_queries.waiting_teams(session, kind)
            if not teams:
                share.pick({}, credit_jobs=0)
                return 0
            shares = queue_queries.team_shares(session, teams)
            in_flight = queue_queries.in_flight_counts(
                session, [team for team in teams if shares[team].max_running is not None]
            )
            # What a team that joins now is credited: the work already in the broker or
            # running, which was chosen before it arrived.
            credit = float(queue_queries.in_flight_of_kind(session, kind))
        sent = 0
        while sent < room:
            # Room under max_running, for the teams that have one.
            may_run = {
                team: limit - in_flight[team]
                for team in in_flight
                if (limit := shares[team].max_running) is not None
            }
            weights = {
                team: shares[team].weight
                for team in teams
                if team in shares and may_run.get(team, 1) > 0
            }
            team = share.pick(weights, credit_jobs=credit)
            if team is None:
                break
            with self.session_factory.begin() as session:
                taken = queue_queries.take_chunk(
                    session,
                    kind=kind,
                    team_id=team,
                    chunk_size=lambda model: self.chunk_size(model, kind),
                    at_most=may_run.get(team),
                )
                if taken is not None:
                    taken = self._screen(session, team, taken)
            if taken is None:
                teams.remove(team)
                share.drop(team)
                continue
            if not taken.job_ids:
                continue  # all refused: nothing to send, the team's next chunk may go
            share.charge(team, len(taken.job_ids), weights[team])
            if team in in_flight:
                in_flight[team] += len(taken.job_ids)
            chunk = Chunk(kind, taken.priority, taken.job_ids, taken.batch_id)
            if publish_chunks(self.celery, [chunk]) != 1:
                with self.session_factory.begin() as session:
                    queue_queries.return_to_waiting(session, chunk.job_ids)
                break
            sent += 1
            DISPATCHED_JOBS.labels(kind).inc(len(chunk.job_ids))
        return sent

    def _screen(
        self, session: Session, team: uuid.UUID, taken: queue_queries.DispatchedChunk
    ) -> queue_queries.DispatchedChunk:
        """The input stage, in the transaction that took the chunk: jobs whose prompt or
        negative prompt breaks a rule end blocked, audited, and are not sent; the rest go."""
        if not self.moderation.active(team):
            return taken
        refused: dict[uuid.UUID, Match] = {}
        for job_id, prompt, negative in moderation_queries.prompts(session, taken.job_ids):
            match = self.moderation.check(team, [prompt, negative or ""])
            if match is not None:
                refused[job_id] = match
        if not refused:
            return taken
        blocked = moderation_queries.block_jobs(session, refused, stage=Stage.INPUT)
        audit.record_many(
            session,
            audit.blocked_rows(
                [(team, job_id, refused[job_id].details(Stage.INPUT)) for job_id in blocked]
            ),
        )
        name = moderation_queries.team_names(session, [team]).get(team, str(team))
        for job_id in blocked:
            JOBS_BLOCKED.labels(name, refused[job_id].reason_code).inc()
        log.info("%d jobs of team %s refused by moderation", len(blocked), name)
        kept = tuple(job_id for job_id in taken.job_ids if job_id not in refused)
        return taken._replace(job_ids=kept)

    def maintain(self) -> RoundReport:
        """Reap expired leases, rebuild what the broker lost of the window, forget old
        idempotency keys, delete what expired under retention."""
        report = RoundReport()
        with self.session_factory.begin() as session:
            requeued = job_queries.reap_expired_leases(
                session, max_attempts=self.settings.max_attempts
            )
        if requeued:
            log.warning("%d jobs lost their worker; back to waiting", len(requeued))
            report.reaped = len(requeued)
            JOBS_RETURNED.labels("lease_expired").inc(len(requeued))
        report.returned = self._return_lost()
        with self.session_factory.begin() as session:
            report.expired_keys = idempotency_queries.purge_expired(
                session, ttl_s=self.settings.idempotency_ttl_s
            )
        report.expired_objects = self._sweep_expired()
        return report

    def _sweep_expired(self) -> int:
        """Bytes first, then rows: a row is marked only once its bytes are deleted, so a
        crash or a store error leaves it for the next round (deleting twice is harmless).
        Each kind's batch is one bulk delete (one S3 request per 1000 keys), so a round
        costs the refill a few milliseconds. A store that cannot be reached pauses the
        sweep for SWEEP_PAUSE_S: its timeouts must not hold up dispatching every round."""
        if time.monotonic() < self._sweep_paused_until:
            return 0
        swept = 0
        for sweep in retention_queries.SWEEPS:
            with self.session_factory() as session:
                due = sweep.due(session, limit=self.settings.retention_sweep_rows)
            if not due:
                continue
            objects = {key: sweep.keys_of(key) for _, key in due}
            try:
                gone = self.store.delete_many([k for keys in objects.values() for k in keys])
            except OSError as exc:
                self._sweep_paused_until = time.monotonic() + SWEEP_PAUSE_S
                log.warning(
                    "retention sweep paused %gs: %s: %s", SWEEP_PAUSE_S, type(exc).__name__, exc
                )
                break
            deleted = [(row_id, key) for row_id, key in due if gone.issuperset(objects[key])]
            if deleted:
                with self.session_factory.begin() as session:
                    swept += sweep.mark_deleted(session, deleted)
                log.info("retention: deleted %d expired %s", len(deleted), sweep.name)
            if len(deleted) < len(due):
                log.warning(
                    "retention: the store kept %d expired %s; retried next round",
                    len(due) - len(deleted),
                    sweep.name,
                )
        return swept

    def _return_lost(self) -> int:
        with self.session_factory() as session:
            unclaimed = queue_queries.unclaimed_dispatched(
                session, older_than_s=self.settings.dispatch_grace_s, limit=LOST_SCAN_LIMIT
            )
        if not unclaimed:
            return 0
        # Read the broker after the database: a job sent in between is seen as held.
        held = ids_held_by_broker(self.broker)
        lost = [job_id for job_id in unclaimed if str(job_id) not in held]
        if not lost:
            return 0
        with self.session_factory.begin() as session:
            returned = queue_queries.return_to_waiting(session, lost)
        log.warning("%d dispatched jobs were not in the broker; back to waiting", returned)
        JOBS_RETURNED.labels("broker_lost").inc(returned)
        return returned

    def run_round(self) -> RoundReport:
        """One maintenance round and a refill: what the leader does without notifications."""
        report = self.maintain()
        report.dispatched = self.refill()
        return report

    def run_forever(self, stop: threading.Event) -> None:
        """Lead while holding the leader lock, until `stop`; stand by otherwise."""

        def leading(now: bool) -> None:
            self.leading = now

        lead_while_locked(
            self.engine,
            LEADER_LOCK_KEY,
            stop,
            self._lead,
            what="dispatcher",
            standby_s=self.settings.dispatch_interval_s,
            retry_s=min(self.settings.dispatch_interval_s, self.settings.dispatch_poll_s),
            leading=leading,
        )

    def _lead(self, conn: Connection, stop: threading.Event) -> None:
        """Refill on every notification (several at once count as one), and at least every
        dispatch_poll_s; maintain every dispatch_interval_s."""
        conn.exec_driver_sql(queue_queries.listen_statement())
        notifications = conn.connection.driver_connection
        next_round = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_round:
                report = self.maintain()
                if report.reaped or report.returned:
                    log.info("dispatch round: %s", report)
                next_round = time.monotonic() + self.settings.dispatch_interval_s
            self.refill()
            wait_s = min(self.settings.dispatch_poll_s, max(0.0, next_round - time.monotonic()))
            for _ in notifications.notifies(timeout=wait_s, stop_after=1):  # type: ignore[union-attr]
                pass
            # Whatever else arrived meanwhile is covered by the same refill.
            for _ in notifications.notifies(timeout=0.0):  # type: ignore[union-attr]
                pass


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
        open_store(settings),
    )
    serve_dispatcher_metrics(settings, dispatcher.session_factory, lambda: dispatcher.leading)
    dispatcher.run_forever(stop or threading.Event())
