"""Reading job_events, the jobs' outbox: a trigger (migration 0009) writes a row for every
status change and progress report in the transaction that made it, and NOTIFYs
EVENTS_CHANNEL on commit. Server-sent event streams and the webhook deliverer read them here.

Readers keep a cursor, the (txid, id) of the last event they took, and read only events of
transactions older than every transaction still running: those will never be joined by an
event that sorts before them. Ids alone would not do: two transactions can commit in the
other order than they drew their ids, and a reader following ids could pass one for good."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.session import affected_rows

EVENTS_CHANNEL = "aigc_events"
_CURSOR = re.compile(r"(\d{1,19})-(\d{1,19})")


class InvalidCursor(ValueError):
    """An event id that is not one this service gave out."""


@dataclass(frozen=True, order=True)
class EventCursor:
    """A place in the event stream: just after the event with this (txid, id)."""

    txid: int
    id: int

    def __str__(self) -> str:
        return f"{self.txid}-{self.id}"

    @classmethod
    def parse(cls, value: str) -> EventCursor:
        match = _CURSOR.fullmatch(value.strip())
        if match is None:
            raise InvalidCursor(f"{value[:40]!r} is not an event id of this service")
        return cls(int(match[1]), int(match[2]))


class JobEvent(NamedTuple):
    cursor: EventCursor
    team_id: uuid.UUID
    job_id: uuid.UUID
    batch_id: uuid.UUID | None
    # started, progress, queued (back for another run) or completed.
    type: str
    status: str
    progress_done: int | None
    progress_total: int | None
    error_code: str | None
    created_at: datetime

    @property
    def progress(self) -> dict[str, int] | None:
        """Steps done of the total, as clients see them; None before the first report."""
        if self.progress_done is None or self.progress_total is None:
            return None
        return {"done": self.progress_done, "total": self.progress_total}


def current_cursor(session: Session) -> EventCursor:
    """Where a reader that wants only what happens from now on starts: past every event
    already committed by transactions older than the oldest one still running."""
    horizon = session.scalar(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"))
    return EventCursor(int(str(horizon)), 0)


def commit_horizon(session: Session) -> int:
    """A txid above every transaction committed by now: once the readable horizon
    (current_cursor) reaches it, every event committed before this call can be read."""
    return int(str(session.scalar(text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text"))))


_SELECT = """
    SELECT txid::text, id, team_id, job_id, batch_id, type, status,
        progress_done, progress_total, error_code, created_at
    FROM job_events
    WHERE (txid, id) > (CAST(:txid AS text)::xid8, :id)
        AND txid < pg_snapshot_xmin(pg_current_snapshot())
"""


def _rows(session: Session, query: str, params: dict[str, Any]) -> list[JobEvent]:
    return [
        JobEvent(EventCursor(int(row[0]), row[1]), *row[2:])
        for row in session.execute(text(query), params)
    ]


def events_after(
    session: Session,
    cursor: EventCursor,
    *,
    limit: int,
    job_id: uuid.UUID | None = None,
    batch_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
) -> list[JobEvent]:
    """The next events after `cursor` in stream order: all jobs', or one job's, or one
    batch's jobs' (of one team's, where given). Only events no later commit can precede
    are returned."""
    query = _SELECT
    params: dict[str, Any] = {"txid": str(cursor.txid), "id": cursor.id, "limit": limit}
    if team_id is not None:
        query += " AND team_id = :team_id"
        params["team_id"] = team_id
    if job_id is not None:
        query += " AND job_id = :job_id"
        params["job_id"] = job_id
    if batch_id is not None:
        query += " AND batch_id = :batch_id"
        params["batch_id"] = batch_id
    query += " ORDER BY txid, id LIMIT :limit"
    return _rows(session, query, params)


def purge_events(session: Session, *, older_than_s: float, limit: int) -> int:
    """Forget up to `limit` events older than `older_than_s` seconds; returns how many."""
    result = session.execute(
        text(
            """
            DELETE FROM job_events WHERE (txid, id) IN (
                SELECT txid, id FROM job_events
                WHERE created_at < now() - make_interval(secs => :age)
                ORDER BY created_at LIMIT :limit
            )
            """
        ),
        {"age": older_than_s, "limit": limit},
    )
    return affected_rows(result)


def listen_statement() -> str:
    return f"LISTEN {EVENTS_CHANNEL}"
