"""Fan-out of job events to the server-sent event streams of one API process.

One thread per process LISTENs on db.events.EVENTS_CHANNEL, reads each new page of events
once, and hands every event to the streams following its job or its batch. It never waits
for a stream: each has a bounded queue, and a stream whose queue is full (its client reads
slower than events come) is told it fell behind and reads what it missed from PostgreSQL
itself, from its own cursor. Workers only write rows; no client can slow them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db import events as event_queries
from db.events import EventCursor, JobEvent

log = logging.getLogger(__name__)

# Events read in one query by the hub; a backlog larger than this takes several.
PAGE_SIZE = 1000
# Events a stream may have waiting before it is told to catch up from the database.
STREAM_QUEUE_SIZE = 1000


class TooManyStreams(Exception):
    """The team already follows as many streams on this process as it may."""


@dataclass(eq=False)
class Subscription:
    """One stream's place at the hub: the events of its job or batch, in stream order."""

    team_id: uuid.UUID | None
    job_id: uuid.UUID | None
    batch_id: uuid.UUID | None
    loop: asyncio.AbstractEventLoop
    # Events in stream order; None wakes the stream to read PostgreSQL itself (`behind`).
    queue: asyncio.Queue[JobEvent | None]
    # Set when the queue overflowed: events were dropped and must be read again.
    behind: bool = False

    def offer(self, events: list[JobEvent]) -> None:
        """Called on the stream's event loop: queue what fits, remember what did not."""
        for event in events:
            try:
                self.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.behind = True
                break

    def fall_behind(self) -> None:
        """Called on the stream's event loop: read PostgreSQL from your own cursor."""
        self.behind = True
        with contextlib.suppress(asyncio.QueueFull):  # a full queue wakes the stream anyway
            self.queue.put_nowait(None)


class EventHub:
    """The process's one reader of new events, started with the first stream."""

    def __init__(
        self,
        engine: Engine,
        session_factory: sessionmaker[Session],
        *,
        poll_s: float,
        max_streams_per_team: int,
        queue_size: int = STREAM_QUEUE_SIZE,
    ) -> None:
        self.engine = engine
        self.session_factory = session_factory
        self.poll_s = poll_s
        self.max_streams_per_team = max_streams_per_team
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._by_job: dict[uuid.UUID, set[Subscription]] = defaultdict(set)
        self._by_batch: dict[uuid.UUID, set[Subscription]] = defaultdict(set)
        self._per_team: dict[uuid.UUID | None, int] = defaultdict(int)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(
        self,
        *,
        team_id: uuid.UUID | None,
        job_id: uuid.UUID | None = None,
        batch_id: uuid.UUID | None = None,
    ) -> Subscription:
        """Follow one job's or one batch's events from now on (call from the event loop)."""
        subscription = Subscription(
            team_id, job_id, batch_id, asyncio.get_running_loop(), asyncio.Queue(self.queue_size)
        )
        with self._lock:
            # Admin keys (team None) are operators: not limited.
            if team_id is not None and self._per_team[team_id] >= self.max_streams_per_team:
                raise TooManyStreams()
            self._per_team[team_id] += 1
            if job_id is not None:
                self._by_job[job_id].add(subscription)
            if batch_id is not None:
                self._by_batch[batch_id].add(subscription)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="event-hub", daemon=True)
                self._thread.start()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._per_team[subscription.team_id] -= 1
            for index, key in (
                (self._by_job, subscription.job_id),
                (self._by_batch, subscription.batch_id),
            ):
                if key is not None and key in index:
                    index[key].discard(subscription)
                    if not index[key]:
                        del index[key]

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_s + 5)

    def _run(self) -> None:
        cursor: EventCursor | None = None
        while not self._stop.is_set():
            try:
                cursor = self._follow(cursor)
            except Exception as exc:
                # Database down: streams stay open and get what they missed once it is back.
                log.warning("event hub: %s: %s", type(exc).__name__, exc)
                self._stop.wait(self.poll_s)

    def _follow(self, cursor: EventCursor | None) -> EventCursor:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            try:
                conn.exec_driver_sql(event_queries.listen_statement())
                notifications = conn.connection.driver_connection
                if cursor is None:
                    with self.session_factory() as session:
                        cursor = event_queries.current_cursor(session)
                    # Streams that subscribed before this start may have missed events
                    # older than the cursor: they read those from PostgreSQL themselves.
                    self._all_fall_behind()
                while not self._stop.is_set():
                    cursor = self._read_new(cursor)
                    for _ in notifications.notifies(  # type: ignore[union-attr]
                        timeout=self.poll_s, stop_after=1
                    ):
                        pass
                    # What else arrived meanwhile is covered by the next read.
                    for _ in notifications.notifies(timeout=0.0):  # type: ignore[union-attr]
                        pass
                return cursor
            finally:
                # Closed, not pooled: a pooled connection must not keep listening.
                conn.invalidate()

    def _read_new(self, cursor: EventCursor) -> EventCursor:
        # Where "now" is, taken before looking for streams: a stream that subscribes after
        # the look reads from PostgreSQL whatever came before it, so skipping up to here
        # loses nothing; taken after, an event committed in between would be skipped.
        with self.session_factory() as session:
            now = event_queries.current_cursor(session)
        with self._lock:
            idle = not self._by_job and not self._by_batch
        if idle:
            # Nobody follows anything: skip what happened instead of reading it.
            return max(cursor, now)
        while True:
            with self.session_factory() as session:
                page = event_queries.events_after(session, cursor, limit=PAGE_SIZE)
            if not page:
                return cursor
            self._hand_out(page)
            cursor = page[-1].cursor
            if len(page) < PAGE_SIZE:
                return cursor

    def _all_fall_behind(self) -> None:
        with self._lock:
            subscriptions = {
                s
                for index in (self._by_job, self._by_batch)
                for group in index.values()
                for s in group
            }
        for subscription in subscriptions:
            with contextlib.suppress(RuntimeError):  # its event loop closed
                subscription.loop.call_soon_threadsafe(subscription.fall_behind)

    def _hand_out(self, page: list[JobEvent]) -> None:
        wanted: dict[Subscription, list[JobEvent]] = defaultdict(list)
        with self._lock:
            for event in page:
                for subscription in self._by_job.get(event.job_id, ()):
                    wanted[subscription].append(event)
                if event.batch_id is not None:
                    for subscription in self._by_batch.get(event.batch_id, ()):
                        wanted[subscription].append(event)
        for subscription, events in wanted.items():
            try:
                subscription.loop.call_soon_threadsafe(subscription.offer, events)
            except RuntimeError:
                # Its event loop closed (the app is shutting down).
                continue
