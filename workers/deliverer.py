"""The deliverer: webhooks leave through their own outbox, at least once, from this process.

Fan-out (one leader at a time, a PostgreSQL advisory lock): read job_events after the stored
cursor, woken by LISTEN aigc_events, and in ONE transaction per page insert the deliveries
the events call for (the job's own webhook, its batch's, the team's enabled endpoints whose
types match; a batch's started, progress and completed) and move the cursor past them. A
page run twice inserts nothing twice: a delivery's msg_id is unique per (event, receiver).

Sending (every deliverer process): lease due deliveries (FOR UPDATE SKIP LOCKED), send them
concurrently, each to the address the SSRF guard checked (aigc.ssrf), signed with the team's
secrets, and record each attempt in its own short transaction; no transaction is open while
a request is in flight. A 2xx is delivered; anything else is retried after a random wait up
to base * 2^attempt (capped), until the delivery is AIGC_WEBHOOK_MAX_AGE_S old; then it is
failed. A slow or dead receiver holds one sending slot for the timeout at most: the API and
the workers never wait on a receiver.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from aigc.ids import uuid7
from aigc.metrics import WEBHOOK_DELIVERIES, WEBHOOK_DELIVERY_SECONDS, serve_metrics
from aigc.settings import Settings
from aigc.signing import UrlSigner
from aigc.ssrf import (
    RefusedDestination,
    Resolver,
    parse_webhook_url,
    resolve_destination,
    system_resolver,
)
from aigc.webhooks.events import (
    BATCH_EVENTS,
    JOB_EVENTS,
    DeliveryStatus,
    EventFilter,
    EventType,
)
from aigc.webhooks.payloads import (
    batch_data,
    envelope,
    job_data,
    message_body,
    message_id,
)
from aigc.webhooks.signing import signed_headers
from db import batches as batch_queries
from db import events as event_queries
from db import webhooks as webhook_queries
from db.tables import Batch, Job, WebhookEndpoint
from workers.leadership import lead_while_locked

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 727276  # pg_advisory_lock key: one fan-out per database
CONSUMER = "webhooks"  # this fan-out's row in webhook_cursors
PAGE_EVENTS = 500  # events read and fanned out per transaction
SNIPPET_BYTES = 1024  # of a receiver's answer, kept with the attempt
ERROR_CHARS = 500  # of an error's text, kept with the attempt
PURGE_INTERVAL_S = 60.0  # between purges of job events the fan-out has passed
PURGE_BATCH = 5_000  # events deleted per statement: short transactions
LEASE_MARGIN_S = 5.0  # a lease outlives the longest request by this much
HIDDEN_RETRY_S = 0.01  # first look again for notified events an older transaction hides


@dataclass
class FanOut:
    """The deliveries one page of events calls for."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        *,
        event_key: str,
        target: str,
        event_type: EventType,
        team_id: uuid.UUID,
        url: str,
        endpoint_id: uuid.UUID | None,
        job_id: uuid.UUID | None,
        batch_id: uuid.UUID | None,
        payload: dict[str, Any],
        deadline_at: datetime,
    ) -> None:
        self.rows.append(
            {
                "id": uuid7(),
                "msg_id": message_id(event_key, target),
                "team_id": team_id,
                "url": url,
                "endpoint_id": endpoint_id,
                "event_type": str(event_type),
                "job_id": job_id,
                "batch_id": batch_id,
                "payload": payload,
                "status": DeliveryStatus.PENDING,
                "deadline_at": deadline_at,
            }
        )


@dataclass(frozen=True)
class Target:
    url: str
    key: str  # the receiver's part of the msg id
    endpoint_id: uuid.UUID | None = None


def _filter(values: list[str] | None) -> set[str]:
    return set(values or ())


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        session_factory: sessionmaker[Session],
        *,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.session_factory = session_factory
        self.resolver = resolver
        self.signer = UrlSigner.from_settings(settings)
        self.base_url = settings.public_url or f"http://{settings.api_host}:{settings.api_port}"

    # ---- Fan-out ------------------------------------------------------------------------

    def fan_out(self) -> int:
        """Fan one page of new events out to deliveries; returns the events read."""
        with self.session_factory.begin() as session:
            cursor = webhook_queries.read_cursor(session, CONSUMER)
            if cursor is None:
                # A first start begins with what happens from now on, not the backlog.
                webhook_queries.save_cursor(
                    session, CONSUMER, event_queries.current_cursor(session)
                )
                return 0
            events = event_queries.events_after(session, cursor, limit=PAGE_EVENTS)
            if not events:
                return 0
            plan = self._plan(session, events)
            webhook_queries.add_deliveries(session, plan.rows)
            webhook_queries.save_cursor(session, CONSUMER, events[-1].cursor)
        return len(events)

    def _plan(self, session: Session, events: list[event_queries.JobEvent]) -> FanOut:
        plan = FanOut()
        deadline = datetime.now(UTC) + timedelta(seconds=self.settings.webhook_max_age_s)
        endpoints = webhook_queries.enabled_endpoints(session, (e.team_id for e in events))
        batch_ids = {e.batch_id for e in events if e.batch_id is not None}
        batches = {b.id: b for b in session.scalars(select(Batch).where(Batch.id.in_(batch_ids)))}
        # A job sent back to the queue (a retry) makes its batch's next end announced again.
        webhook_queries.clear_batches_completed(
            session, {e.batch_id for e in events if e.type == "queued" and e.batch_id}
        )
        hooks = {
            job_id: (url, _filter(events_filter))
            for job_id, url, events_filter in session.execute(
                select(Job.id, Job.webhook, Job.webhook_events_filter).where(
                    Job.id.in_({e.job_id for e in events if e.batch_id is None}),
                    Job.webhook.is_not(None),
                )
            )
        }
        wanted: list[tuple[event_queries.JobEvent, EventType, list[Target]]] = []
        started: set[uuid.UUID] = set()
        finished: set[uuid.UUID] = set()
        for event in events:
            if event.type not in JOB_EVENTS:
                continue
            word, event_type = JOB_EVENTS[event.type]
            targets = []
            hook = hooks.get(event.job_id)
            if hook and hook[0] and word in hook[1]:
                targets.append(Target(hook[0], f"job-webhook {hook[0]}"))
            batch = batches.get(event.batch_id) if event.batch_id else None
            if batch is not None:
                if (
                    batch.webhook
                    and event_type == EventType.JOB_COMPLETED
                    and EventFilter.JOB_COMPLETED in _filter(batch.webhook_events_filter)
                ):
                    targets.append(Target(batch.webhook, f"batch-webhook {batch.webhook}"))
                if event.type == "started":
                    started.add(batch.id)
                elif event.type == "completed":
                    finished.add(batch.id)
            targets += self._endpoint_targets(endpoints.get(event.team_id, ()), event_type)
            if targets:
                wanted.append((event, event_type, targets))
        self._add_job_deliveries(session, plan, wanted, deadline)
        self._add_batch_deliveries(
            session, plan, batches, endpoints, events, started, finished, deadline
        )
        return plan

    @staticmethod
    def _endpoint_targets(
        endpoints: Iterable[WebhookEndpoint], event_type: EventType
    ) -> list[Target]:
        return [
            Target(endpoint.url, f"endpoint {endpoint.id}", endpoint.id)
            for endpoint in endpoints
            if event_type in endpoint.events
        ]

    def _add_job_deliveries(
        self,
        session: Session,
        plan: FanOut,
        wanted: list[tuple[event_queries.JobEvent, EventType, list[Target]]],
        deadline: datetime,
    ) -> None:
        if not wanted:
            return
        jobs = {
            job.id: job
            for job in session.scalars(
                select(Job)
                .where(Job.id.in_({event.job_id for event, _, _ in wanted}))
                .options(selectinload(Job.artifacts))
            )
        }
        for event, event_type, targets in wanted:
            job = jobs.get(event.job_id)
            if job is None:
                continue
            payload = envelope(event_type, event.created_at, job_data(job, event))
            for target in targets:
                plan.add(
                    event_key=f"job {event.cursor}",
                    target=target.key,
                    event_type=event_type,
                    team_id=event.team_id,
                    url=target.url,
                    endpoint_id=target.endpoint_id,
                    job_id=job.id,
                    batch_id=job.batch_id,
                    payload=payload,
                    deadline_at=deadline,
                )

    def _add_batch_deliveries(
        self,
        session: Session,
        plan: FanOut,
        batches: dict[uuid.UUID, Batch],
        endpoints: dict[uuid.UUID, list[WebhookEndpoint]],
        events: list[event_queries.JobEvent],
        started: set[uuid.UUID],
        finished: set[uuid.UUID],
        deadline: datetime,
    ) -> None:
        """batch.started (once per batch), batch.completed (once per time it finishes) and
        batch.progress (at most once per interval), for batches something listens to."""

        def targets(batch: Batch, event_type: EventType) -> list[Target]:
            found = self._endpoint_targets(endpoints.get(batch.team_id, ()), event_type)
            if batch.webhook and BATCH_EVENTS[event_type] in _filter(batch.webhook_events_filter):
                found.append(Target(batch.webhook, f"batch-webhook {batch.webhook}"))
            return found

        interested = {
            (batch_id, event_type): found
            for batch_ids, types in (
                (started, (EventType.BATCH_STARTED,)),
                (finished, (EventType.BATCH_COMPLETED, EventType.BATCH_PROGRESS)),
            )
            for batch_id in batch_ids
            for event_type in types
            if (found := targets(batches[batch_id], event_type))
        }
        if not interested:
            return
        listened = [batches[batch_id] for batch_id in {key[0] for key in interested}]
        counts = batch_queries.batch_counts(session, listened)
        done = {batch.id for batch in listened if not counts[batch.id].active}
        newly_done = webhook_queries.mark_batches_completed(
            session,
            {batch_id for batch_id, t in interested if t == EventType.BATCH_COMPLETED} & done,
        )
        last_event = {e.batch_id: e for e in events if e.batch_id is not None}
        bucket = int(time.time() // self.settings.webhook_batch_progress_interval_s)
        for (batch_id, event_type), found in interested.items():
            batch = batches[batch_id]
            event = last_event[batch_id]
            if event_type == EventType.BATCH_COMPLETED:
                if batch_id not in newly_done:
                    continue
                event_key = f"batch.completed {batch_id} {event.cursor}"
            elif event_type == EventType.BATCH_PROGRESS:
                if batch_id in done:
                    continue
                event_key = f"batch.progress {batch_id} {bucket}"
            else:
                event_key = f"batch.started {batch_id}"
            status = batch_queries.batch_status(batch, counts[batch_id])
            payload = envelope(
                event_type, event.created_at, batch_data(batch, status, counts[batch_id])
            )
            for target in found:
                plan.add(
                    event_key=event_key,
                    target=target.key,
                    event_type=event_type,
                    team_id=batch.team_id,
                    url=target.url,
                    endpoint_id=target.endpoint_id,
                    job_id=None,
                    batch_id=batch_id,
                    payload=payload,
                    deadline_at=deadline,
                )

    def purge_events(self) -> int:
        """Forget job events older than AIGC_EVENT_RETENTION_S that the fan-out has passed,
        a bounded batch per transaction; returns how many."""
        purged = 0
        while True:
            with self.session_factory.begin() as session:
                cursor = webhook_queries.read_cursor(session, CONSUMER)
                if cursor is None:
                    return purged
                deleted = webhook_queries.purge_read_events(
                    session,
                    upto=cursor,
                    older_than_s=self.settings.event_retention_s,
                    limit=PURGE_BATCH,
                )
            purged += deleted
            if deleted < PURGE_BATCH:
                return purged

    # ---- Sending ------------------------------------------------------------------------

    def _lease_s(self) -> float:
        return (
            self.settings.webhook_connect_timeout_s
            + self.settings.webhook_timeout_s
            + (LEASE_MARGIN_S)
        )

    def take_due(
        self, limit: int
    ) -> tuple[list[webhook_queries.DueDelivery], dict[uuid.UUID, list[str]]]:
        """Lease up to `limit` due deliveries, with their teams' signing secrets."""
        with self.session_factory.begin() as session:
            due = webhook_queries.take_due(session, limit=limit, lease_s=self._lease_s())
            if not due:
                return [], {}
            team_secrets = webhook_queries.secrets_by_team(session, {d.team_id for d in due})
        return due, team_secrets

    def client(self) -> httpx.AsyncClient:
        """The sender's HTTP client: no redirects, no proxies from the environment (the
        request must go to the checked address), short timeouts."""
        return httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(
                self.settings.webhook_timeout_s, connect=self.settings.webhook_connect_timeout_s
            ),
            limits=httpx.Limits(max_connections=self.settings.webhook_concurrency),
        )

    async def deliver(
        self, client: httpx.AsyncClient, due: webhook_queries.DueDelivery, team_secrets: list[str]
    ) -> bool:
        """One attempt of one delivery, recorded; True when delivered."""
        started = time.perf_counter()
        status_code, error, snippet = await self._attempt(client, due, team_secrets)
        latency_ms = (time.perf_counter() - started) * 1000.0
        delivered = status_code is not None and 200 <= status_code < 300
        retry_at = None if delivered else self._retry_at(due)
        await asyncio.to_thread(
            self._record, due, status_code, error, latency_ms, snippet, retry_at
        )
        return delivered

    def _retry_at(self, due: webhook_queries.DueDelivery) -> datetime | None:
        """Full jitter: a random wait up to base * 2^attempt, capped; None past the
        delivery's deadline (it fails)."""
        ceiling = min(
            self.settings.webhook_retry_cap_s,
            self.settings.webhook_retry_base_s * 2 ** min(due.attempts, 32),
        )
        retry_at = datetime.now(UTC) + timedelta(seconds=random.uniform(0, ceiling))
        return retry_at if retry_at <= due.deadline_at else None

    def _record(
        self,
        due: webhook_queries.DueDelivery,
        status_code: int | None,
        error: str | None,
        latency_ms: float,
        snippet: str | None,
        retry_at: datetime | None,
    ) -> None:
        with self.session_factory.begin() as session:
            kept = webhook_queries.record_attempt(
                session,
                due,
                status_code=status_code,
                error=error,
                latency_ms=latency_ms,
                snippet=snippet,
                retry_at=retry_at,
            )
        if not kept:
            log.warning("delivery %s: lease lost before its attempt was recorded", due.id)
            return
        outcome = "delivered" if error is None else "retrying" if retry_at else "failed"
        WEBHOOK_DELIVERIES.labels(outcome).inc()
        WEBHOOK_DELIVERY_SECONDS.observe(latency_ms / 1000.0)

    async def _attempt(
        self, client: httpx.AsyncClient, due: webhook_queries.DueDelivery, team_secrets: list[str]
    ) -> tuple[int | None, str | None, str | None]:
        """(status code, error, response snippet) of one request."""
        settings = self.settings
        try:
            parsed = parse_webhook_url(due.url, allow_http=settings.webhook_allow_http)
            async with asyncio.timeout(settings.webhook_connect_timeout_s):
                destination = await asyncio.to_thread(
                    resolve_destination,
                    parsed,
                    allow_private=settings.webhook_allow_private,
                    resolver=self.resolver,
                )
        except RefusedDestination as exc:
            return None, f"refused: the URL {exc}"[:ERROR_CHARS], None
        except TimeoutError:
            return None, f"timeout (resolving {parsed.host})"[:ERROR_CHARS], None
        body = message_body(due.payload, self.base_url, self.signer)
        headers = signed_headers(due.msg_id, int(time.time()), body, team_secrets)
        headers["host"] = destination.host_header
        headers["accept-encoding"] = "identity"  # a snippet is read raw: nothing to inflate
        try:
            async with asyncio.timeout(
                settings.webhook_connect_timeout_s + settings.webhook_timeout_s
            ):
                async with client.stream(
                    "POST",
                    destination.connect_url,
                    content=body,
                    headers=headers,
                    extensions={"sni_hostname": destination.sni_hostname},
                ) as response:
                    snippet = await _read_some(response, SNIPPET_BYTES)
        except (TimeoutError, httpx.TimeoutException) as exc:
            return None, f"timeout ({type(exc).__name__})", None
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS], None
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return response.status_code, error, snippet

    async def deliver_due(self, client: httpx.AsyncClient | None = None) -> int:
        """One round: lease what is due (up to the concurrency), send it all, record each;
        returns how many were sent."""
        due, team_secrets = await asyncio.to_thread(
            self.take_due, self.settings.webhook_concurrency
        )
        if not due:
            return 0
        if client is None:
            async with self.client() as own:
                await asyncio.gather(*(self.deliver(own, d, team_secrets[d.team_id]) for d in due))
        else:
            await asyncio.gather(*(self.deliver(client, d, team_secrets[d.team_id]) for d in due))
        return len(due)

    async def send_forever(self, stop: threading.Event, wake: asyncio.Event) -> None:
        """Keep up to AIGC_WEBHOOK_CONCURRENCY deliveries in flight until `stop`; look for
        due ones when woken, when one finishes, and at least every AIGC_WEBHOOK_POLL_S."""
        in_flight: set[asyncio.Task[bool]] = set()
        async with self.client() as client:
            while not stop.is_set():
                wake.clear()
                room = self.settings.webhook_concurrency - len(in_flight)
                taken = 0
                if room > 0:
                    try:
                        due, team_secrets = await asyncio.to_thread(self.take_due, room)
                    except Exception as exc:
                        log.warning("taking deliveries failed: %s: %s", type(exc).__name__, exc)
                        due, team_secrets = [], {}
                    taken = len(due)
                    for item in due:
                        in_flight.add(
                            asyncio.create_task(
                                self.deliver(client, item, team_secrets[item.team_id])
                            )
                        )
                if taken and taken == room:
                    await asyncio.sleep(0)
                    continue  # more may be due: look again once a slot frees
                woken = asyncio.create_task(wake.wait())
                done, _ = await asyncio.wait(
                    {*in_flight, woken},
                    timeout=self.settings.webhook_poll_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                woken.cancel()
                for task in done & in_flight:
                    in_flight.discard(task)
                    if task.exception() is not None:
                        log.warning("a delivery failed to record: %s", task.exception())
            if in_flight:
                await asyncio.wait(in_flight)

    # ---- Processes ----------------------------------------------------------------------

    def fan_out_forever(self, stop: threading.Event) -> None:
        """Lead the fan-out while holding the leader lock, until `stop`; stand by
        otherwise."""
        poll = self.settings.webhook_poll_s
        lead_while_locked(
            self.engine,
            LEADER_LOCK_KEY,
            stop,
            self._lead,
            what="the webhook fan-out",
            standby_s=poll,
            retry_s=poll,
        )

    def _lead(self, conn: Connection, stop: threading.Event) -> None:
        conn.exec_driver_sql(event_queries.listen_statement())
        notifications = conn.connection.driver_connection
        next_purge = time.monotonic() + PURGE_INTERVAL_S
        # A notification means events committed. Reading none after one, an older
        # transaction (anywhere on the server) still hides them (db.events), and its end
        # sends no notification: look again soon, then less and less often.
        pending, hidden_s = False, HIDDEN_RETRY_S
        while not stop.is_set():
            read = self.fan_out()
            while read == PAGE_EVENTS and not stop.is_set():
                read = self.fan_out()  # a backlog: the next page at once
            if time.monotonic() >= next_purge:
                purged = self.purge_events()
                if purged:
                    log.info("purged %d job events", purged)
                next_purge = time.monotonic() + PURGE_INTERVAL_S
            if read or not pending:
                pending, hidden_s = False, HIDDEN_RETRY_S
                wait_s = self.settings.webhook_poll_s
            else:
                wait_s, hidden_s = hidden_s, min(self.settings.webhook_poll_s, hidden_s * 2)
            for _ in notifications.notifies(timeout=wait_s, stop_after=1):  # type: ignore[union-attr]
                pending = True
            for _ in notifications.notifies(timeout=0.0):  # type: ignore[union-attr]
                pass  # covered by the same read

    def listen_for_deliveries(
        self, stop: threading.Event, loop: asyncio.AbstractEventLoop, wake: asyncio.Event
    ) -> None:
        """Wake the sender (in `loop`) whenever deliveries are added or redelivered."""
        while not stop.is_set():
            try:
                with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    try:
                        conn.exec_driver_sql(f"LISTEN {webhook_queries.DELIVERIES_CHANNEL}")
                        notifications = conn.connection.driver_connection
                        while not stop.is_set():
                            for _ in notifications.notifies(timeout=0.5, stop_after=1):  # type: ignore[union-attr]
                                loop.call_soon_threadsafe(wake.set)
                    finally:
                        conn.invalidate()
            except Exception as exc:
                log.warning("listening for deliveries failed: %s: %s", type(exc).__name__, exc)
                stop.wait(self.settings.webhook_poll_s)

    def run_forever(self, stop: threading.Event) -> None:
        """Fan out (when leading) and send (always) until `stop`."""

        async def main() -> None:
            wake = asyncio.Event()
            loop = asyncio.get_running_loop()
            threads = [
                threading.Thread(target=self.fan_out_forever, args=(stop,), daemon=True),
                threading.Thread(
                    target=self.listen_for_deliveries, args=(stop, loop, wake), daemon=True
                ),
            ]
            for thread in threads:
                thread.start()
            await self.send_forever(stop, wake)
            for thread in threads:
                await asyncio.to_thread(thread.join)

        asyncio.run(main())


async def _read_some(response: httpx.Response, limit: int) -> str:
    """At most `limit` bytes of the answer, as text; the rest is never read."""
    buffer = bytearray()
    async for chunk in response.aiter_raw():
        buffer += chunk
        if len(buffer) >= limit:
            break
    return bytes(buffer[:limit]).decode("utf-8", errors="replace")


def run_deliverer(settings: Settings, stop: threading.Event | None = None) -> None:
    from aigc.connections import database_engine
    from db.session import make_session_factory

    engine = database_engine(settings)
    if settings.deliverer_metrics_port:
        serve_metrics(
            settings.deliverer_metrics_port,
            host=settings.metrics_host,
            token=settings.metrics_token,
        )
    Deliverer(settings, engine, make_session_factory(engine)).run_forever(stop or threading.Event())
