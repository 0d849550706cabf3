"""Server-sent events: a job's or a batch's status changes and progress as they happen.

A stream opens with the current state (`status`), then sends each change with an event id;
a client that reconnects with `Last-Event-ID` gets what it missed, read from job_events.
A stream ends after the job's `completed` (or the batch's)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from aigc.errors import InvalidRequest, NotFound, RateLimited
from aigc.settings import Settings
from aigc.vocab import FINAL_JOB_STATUSES
from api.auth import CallerDep, authenticate
from api.event_hub import EventHub, Subscription, TooManyStreams
from api.routes.batches import batch_public
from api.serialize import job_public
from db import batches as batch_queries
from db import events as event_queries
from db import jobs as job_queries
from db.events import EventCursor, InvalidCursor, JobEvent
from db.scope import scope_to_team

router = APIRouter(tags=["events"], dependencies=[Depends(authenticate)])

# Events read from PostgreSQL at once by a stream that fell behind or resumed.
CATCH_UP_PAGE = 500
# How long a browser's EventSource waits before reconnecting, in milliseconds.
RECONNECT_MS = 2000
# How often a finished batch's stream looks for the last of its jobs' events.
DRAIN_POLL_S = 0.02
# A comment line, with no blank line after it: it ends no event, so no client sees one.
KEEP_ALIVE = b": keep-alive\n"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
EVENT_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "A stream of server-sent events",
    },
    404: {"description": "No such job or batch for this key's team"},
    429: {"description": "The team has too many streams open"},
}

LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=64,
        description="Resume after this event id (EventSource sends it when it reconnects).",
    ),
]

T = TypeVar("T")


def sse(
    event: str, data: dict[str, Any], cursor: EventCursor | None = None, *, first: bool = False
) -> bytes:
    """One server-sent event: its name, its id (where it has one) and one line of JSON. The
    first event of a stream also says how long a client waits before reconnecting."""
    lines = [f"retry: {RECONNECT_MS}"] if first else []
    lines.append(f"event: {event}")
    if cursor is not None:
        lines.append(f"id: {cursor}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), default=str))
    return ("\n".join(lines) + "\n\n").encode()


def _resume_cursor(last_event_id: str | None) -> EventCursor | None:
    if last_event_id is None or not last_event_id.strip():
        return None
    try:
        return EventCursor.parse(last_event_id)
    except InvalidCursor as exc:
        message = f"{exc}; send an id from this stream, or none to start from now"
        raise InvalidRequest(message, [{"field": "Last-Event-ID", "message": message}]) from exc


class _StreamReader:
    """A stream's database reads, in the request's team scope, off the event loop."""

    def __init__(self, request: Request, caller: CallerDep) -> None:
        self.request = request
        self.settings: Settings = request.app.state.settings
        self.hub: EventHub = request.app.state.event_hub
        self.team_id = None if caller.is_admin else caller.team_id
        self._session_factory = request.app.state.session_factory

    async def read(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with self._session_factory() as session:
                if self.team_id is not None:
                    scope_to_team(session, self.team_id)
                return work(session)

        return await run_in_threadpool(run)

    def subscribe(self, **target: uuid.UUID) -> Subscription:
        """A place at the hub. What happened between the stream's first read and now may
        have passed the hub already: the stream's first events come from PostgreSQL."""
        try:
            subscription = self.hub.subscribe(team_id=self.team_id, **target)
            subscription.behind = True
            return subscription
        except TooManyStreams as exc:
            raise RateLimited(
                f"this team already has {self.settings.max_event_streams_per_team} event "
                "streams open on this server; close one first",
                retry_after_s=5,
            ) from exc

    async def next_events(
        self, subscription: Subscription, cursor: EventCursor, timeout_s: float, **target: Any
    ) -> list[JobEvent] | None:
        """The next events after `cursor`: from the hub, or from PostgreSQL when the stream
        fell behind or resumes; None when nothing came within timeout_s."""
        if subscription.behind:
            subscription.behind = False
            while not subscription.queue.empty():
                subscription.queue.get_nowait()
            page = await self.read(
                lambda session: event_queries.events_after(
                    session, cursor, limit=CATCH_UP_PAGE, team_id=self.team_id, **target
                )
            )
            # A full page: more may be there, read on before taking the hub's again.
            subscription.behind = len(page) == CATCH_UP_PAGE
            if page:
                return page
        try:
            first = await asyncio.wait_for(subscription.queue.get(), timeout_s)
        except TimeoutError:
            return None
        taken = [first]
        while not subscription.queue.empty():
            taken.append(subscription.queue.get_nowait())
        # None only wakes the stream: it fell behind, and reads PostgreSQL next time round.
        return [event for event in taken if event is not None]


def _event_data(event: JobEvent) -> dict[str, Any]:
    return {
        "job_id": str(event.job_id),
        "batch_id": str(event.batch_id) if event.batch_id else None,
        "status": event.status,
        "progress": event.progress,
        "error_code": event.error_code,
        # When the change was made (its transaction's start, by the database's clock).
        "at": event.created_at.isoformat(),
    }


def _has_events_after(
    session: Session, cursor: EventCursor, reader: _StreamReader, **target: uuid.UUID
) -> bool:
    return bool(
        event_queries.events_after(session, cursor, limit=1, team_id=reader.team_id, **target)
    )


def _readable_page(
    session: Session, *, cursor: EventCursor, team_id: uuid.UUID | None, batch_id: uuid.UUID
) -> tuple[int, list[JobEvent]]:
    """The readable horizon (taken first), then the batch's next events after `cursor`."""
    horizon = event_queries.current_cursor(session).txid
    page = event_queries.events_after(
        session, cursor, limit=CATCH_UP_PAGE, team_id=team_id, batch_id=batch_id
    )
    return horizon, page


def _nothing_more() -> Response:
    """A resumed stream with nothing left to send: 204 tells EventSource not to reconnect."""
    return Response(status_code=204)


def _streaming(stream: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)


@router.get(
    "/v1/jobs/{job_id}/events", response_class=StreamingResponse, responses=EVENT_STREAM_DOC
)
async def job_events(
    job_id: uuid.UUID,
    request: Request,
    caller: CallerDep,
    last_event_id: LastEventIdHeader = None,
) -> Response:
    """Follow a job: `status` (its state now, as GET /v1/jobs/{id} shows it), then
    `started`, `progress` (steps or tokens done of the total), `queued` (back for another
    run) and finally `completed` with the finished job, after which the stream ends."""
    reader = _StreamReader(request, caller)
    resume = _resume_cursor(last_event_id)

    def load(session: Session) -> tuple[EventCursor, dict[str, Any] | None, bool]:
        # The cursor first: anything committed after it is streamed, even if the job read
        # next already shows it (a client may see one change twice, never miss one).
        cursor = event_queries.current_cursor(session)
        job = job_queries.get_job(session, job_id)
        if job is None:
            return cursor, None, False
        missed = resume is not None and _has_events_after(session, resume, reader, job_id=job_id)
        return cursor, job_public(request, reader.settings, job).model_dump(mode="json"), missed

    start, job, missed = await reader.read(load)
    if job is None:
        raise NotFound("job", job_id)
    if resume is not None and job["status"] in FINAL_JOB_STATUSES and not missed:
        return _nothing_more()
    subscription = reader.subscribe(job_id=job_id)

    def finished_job(session: Session) -> dict[str, Any]:
        found = job_queries.get_job(session, job_id)
        assert found is not None  # it was there a moment ago, and jobs are not deleted
        return job_public(request, reader.settings, found).model_dump(mode="json")

    async def stream() -> AsyncIterator[bytes]:
        try:
            cursor = start
            if resume is None:
                yield sse("status", job, start, first=True)
                if job["status"] in FINAL_JOB_STATUSES:
                    return
            else:
                cursor = resume
            while True:
                events = await reader.next_events(
                    subscription, cursor, reader.settings.event_keepalive_s, job_id=job_id
                )
                if events is None:
                    yield KEEP_ALIVE
                    continue
                for event in events:
                    if event.cursor <= cursor:
                        continue
                    cursor = event.cursor
                    if event.type == "completed":
                        yield sse("completed", await reader.read(finished_job), cursor)
                        return
                    yield sse(event.type, _event_data(event), cursor)
        finally:
            reader.hub.unsubscribe(subscription)

    return _streaming(stream())


@router.get(
    "/v1/batches/{batch_id}/events", response_class=StreamingResponse, responses=EVENT_STREAM_DOC
)
async def batch_events(
    batch_id: uuid.UUID,
    request: Request,
    caller: CallerDep,
    last_event_id: LastEventIdHeader = None,
) -> Response:
    """Follow a batch: `status` (the batch now), `job_completed` for each job that
    finishes, `progress` with the batch's counts (at most every
    AIGC_BATCH_PROGRESS_INTERVAL_S), and `completed` once no job is queued or running,
    after which the stream ends."""
    reader = _StreamReader(request, caller)
    resume = _resume_cursor(last_event_id)

    def load_batch(session: Session) -> tuple[dict[str, Any], bool] | None:
        batch = batch_queries.get_batch(session, batch_id)
        if batch is None:
            return None
        counts = batch_queries.batch_counts(session, [batch])[batch.id]
        return batch_public(batch, counts).model_dump(mode="json"), counts.active > 0

    def load(
        session: Session,
    ) -> tuple[EventCursor, tuple[dict[str, Any], bool] | None, bool]:
        cursor = event_queries.current_cursor(session)
        found = load_batch(session)
        missed = (
            found is not None
            and resume is not None
            and _has_events_after(session, resume, reader, batch_id=batch_id)
        )
        return cursor, found, missed

    start, found, missed = await reader.read(load)
    if found is None:
        raise NotFound("batch", batch_id)
    if resume is not None and not found[1] and not missed:
        return _nothing_more()
    subscription = reader.subscribe(batch_id=batch_id)
    interval_s = reader.settings.batch_progress_interval_s

    async def stream() -> AsyncIterator[bytes]:
        try:
            cursor = start
            batch, active = found
            if resume is None:
                yield sse("status", batch, start, first=True)
                if not active:
                    yield sse("completed", batch, start)
                    return
            else:
                cursor = resume
            # Counts are read at most every interval_s; a change inside the interval is
            # sent when it ends.
            pending = False
            last_counts = 0.0
            while True:
                wait_s = reader.settings.event_keepalive_s
                if pending:
                    wait_s = max(0.0, last_counts + interval_s - time.monotonic())
                events = await reader.next_events(subscription, cursor, wait_s, batch_id=batch_id)
                for event in events or ():
                    if event.cursor <= cursor:
                        continue
                    cursor = event.cursor
                    pending = True
                    if event.type == "completed":
                        yield sse("job_completed", _event_data(event), cursor)
                if pending and time.monotonic() >= last_counts + interval_s:
                    now = await reader.read(load_batch)
                    assert now is not None  # batches are not deleted
                    batch, active = now
                    pending, last_counts = False, time.monotonic()
                    if active:
                        yield sse("progress", batch, cursor)
                        continue
                    # The counts read the jobs themselves, which events trail by the
                    # transactions still running: send every job's end before the batch's.
                    upto = await reader.read(event_queries.commit_horizon)
                    deadline = time.monotonic() + reader.settings.event_keepalive_s
                    while True:
                        horizon, page = await reader.read(
                            partial(
                                _readable_page,
                                cursor=cursor,
                                team_id=reader.team_id,
                                batch_id=batch_id,
                            )
                        )
                        for event in page:
                            cursor = event.cursor
                            if event.type == "completed":
                                yield sse("job_completed", _event_data(event), cursor)
                        if len(page) == CATCH_UP_PAGE:
                            continue
                        if horizon >= upto or time.monotonic() > deadline:
                            break
                        await asyncio.sleep(DRAIN_POLL_S)
                    yield sse("completed", batch, cursor)
                    return
                elif events is None and not pending:
                    yield KEEP_ALIVE
        finally:
            reader.hub.unsubscribe(subscription)

    return _streaming(stream())
