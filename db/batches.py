"""Queries on batches. A batch's counts and status are derived from its jobs on read."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from aigc.ids import uuid7, uuid7_many
from aigc.vocab import ACTIVE_JOB_STATUSES, BatchApi, BatchStatus, JobStatus
from db.dispatch_queue import notify_dispatcher
from db.session import affected_rows
from db.tables import Batch, Job

COPY_COLUMNS = (
    "id", "kind", "model", "prompt", "params", "status", "priority",
    "attempts", "metadata", "batch_id", "line", "custom_id", "team_id", "key_prefix",
)  # fmt: skip


@dataclass(frozen=True)
class NewJob:
    """A job to insert with its batch."""

    kind: str
    model: str
    prompt: str
    params: dict[str, Any]
    metadata: dict[str, Any]
    custom_id: str | None = None


class NewJobs(Protocol):
    """A batch's jobs: how many, and each in input order (a list, or lines checked as they
    are read)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[NewJob]: ...


@dataclass
class BatchCounts:
    total: int
    by_status: dict[str, int] = field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # When the job that has waited longest became queued; None when none is queued.
    oldest_queued_at: datetime | None = None

    def __getitem__(self, status: str) -> int:
        return self.by_status.get(status, 0)

    @property
    def active(self) -> int:
        return sum(self[status] for status in ACTIVE_JOB_STATUSES)

    @classmethod
    def all_queued(cls, batch: Batch) -> BatchCounts:
        """A batch just stored: every job queued, nothing started. Its jobs were queued in
        the transaction that created it, so at its created_at (PostgreSQL's now() is the
        transaction's start)."""
        return cls(
            total=batch.total,
            by_status={JobStatus.QUEUED: batch.total},
            oldest_queued_at=batch.created_at if batch.total else None,
        )


def create_batch(
    session: Session,
    *,
    jobs: NewJobs,
    priority: str,
    metadata: dict[str, Any],
    team_id: uuid.UUID,
    key_prefix: str | None = None,
    api: str = BatchApi.NATIVE,
    **openai_fields: Any,
) -> tuple[Batch, list[uuid.UUID]]:
    """Insert the batch and all its jobs in the caller's transaction; returns the job ids in
    input order. Jobs go in with one COPY: tens of thousands of rows in well under a second;
    the dispatcher is woken when the transaction commits. `jobs` may check each job as it is
    iterated and raise; the COPY then stops and the caller rolls back."""
    batch = Batch(
        id=uuid7(),
        team_id=team_id,
        api=api,
        priority=priority,
        total=len(jobs),
        meta=metadata,
        **openai_fields,
    )
    session.add(batch)
    session.flush()
    job_ids = uuid7_many(len(jobs))
    as_json = _JsonText()
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY jobs ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
        for line, (job_id, job) in enumerate(zip(job_ids, jobs, strict=True)):
            copy.write_row(
                (
                    job_id, job.kind, job.model, job.prompt, as_json(job.params), JobStatus.QUEUED,
                    priority, 0, as_json(job.metadata), batch.id, line, job.custom_id, team_id,
                    key_prefix,
                )
            )  # fmt: skip
    notify_dispatcher(session)
    return batch, job_ids


class _JsonText:
    """JSON text for COPY's jsonb columns (PostgreSQL parses it), made once per distinct
    flat object: a batch's jobs mostly share their params, and encoding each one again was
    most of the time of a large COPY."""

    def __init__(self) -> None:
        self.seen: dict[tuple[tuple[str, type, Any], ...], str] = {}

    def __call__(self, value: dict[str, Any]) -> str:
        if not value:
            return "{}"
        try:
            # The type is in the key: True == 1 and 1.0 == 1, but they encode differently.
            key = tuple((name, type(item), item) for name, item in value.items())
            text = self.seen.get(key)
        except TypeError:  # nested values: not hashable, encoded each time
            return json.dumps(value)
        if text is None:
            text = self.seen[key] = json.dumps(value)
        return text


def get_batch(session: Session, batch_id: uuid.UUID) -> Batch | None:
    return session.get(Batch, batch_id)


def list_batches(
    session: Session, *, limit: int, before: uuid.UUID | None = None
) -> Sequence[Batch]:
    query = select(Batch).order_by(Batch.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Batch.id < before)
    return session.scalars(query).all()


def batch_counts(session: Session, batches: Sequence[Batch]) -> dict[uuid.UUID, BatchCounts]:
    """Job counts by status, first start / last finish and the oldest queued job's
    queued_at, for several batches in one query."""
    counts = {batch.id: BatchCounts(total=batch.total) for batch in batches}
    if not counts:
        return counts
    rows = session.execute(
        select(
            Job.batch_id,
            Job.status,
            func.count(),
            func.min(Job.started_at),
            func.max(Job.finished_at),
            func.min(Job.queued_at),
        )
        .where(Job.batch_id.in_(counts))
        .group_by(Job.batch_id, Job.status)
    )
    for batch_id, status, count, started_at, finished_at, queued_at in rows:
        entry = counts[batch_id]  # type: ignore[index]  # filtered to these batches
        entry.by_status[status] = count
        if status == JobStatus.QUEUED:
            # queued_at is reset when a job goes back to the queue: a retried job's wait
            # starts again, and only the queued group's minimum is a wait still going on.
            entry.oldest_queued_at = queued_at
        if started_at and (entry.started_at is None or started_at < entry.started_at):
            entry.started_at = started_at
        if finished_at and (entry.finished_at is None or finished_at > entry.finished_at):
            entry.finished_at = finished_at
    for entry in counts.values():
        entry.by_status = {status: entry[status] for status in JobStatus}
        if entry.active:
            entry.finished_at = None
    return counts


def batch_status(batch: Batch, counts: BatchCounts) -> BatchStatus:
    """The batch's status, derived from its jobs' states."""
    if batch.cancel_requested_at is not None:
        return BatchStatus.CANCELING if counts.active else BatchStatus.CANCELED
    if counts[JobStatus.QUEUED] == counts.total and counts.total:
        return BatchStatus.QUEUED
    if counts.active:
        return BatchStatus.RUNNING
    # Failed only when nothing could run: no job succeeded and some failed (a job refused
    # by moderation failed for a cause, too).
    refused = counts[JobStatus.FAILED] + counts[JobStatus.BLOCKED]
    if counts[JobStatus.SUCCEEDED] == 0 and refused > 0:
        return BatchStatus.FAILED
    return BatchStatus.COMPLETED


def cancel_batch(session: Session, batch_id: uuid.UUID) -> int:
    """Mark the batch canceled and cancel its queued and running jobs; returns how many.

    Running jobs see their status at their next step and stop (workers poll it).
    """
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.cancel_requested_at.is_(None))
        .values(cancel_requested_at=func.now())
    )
    result = session.execute(
        update(Job)
        .where(Job.batch_id == batch_id, Job.status.in_(ACTIVE_JOB_STATUSES))
        .values(status=JobStatus.CANCELED, finished_at=func.now())
    )
    return affected_rows(result)


def batch_jobs(
    session: Session,
    batch_id: uuid.UUID,
    *,
    limit: int,
    after_line: int = -1,
    status: str | None = None,
    with_artifacts: bool = True,
) -> Sequence[Job]:
    """The batch's jobs in input order, from the line after `after_line`."""
    query = (
        select(Job)
        .where(Job.batch_id == batch_id, Job.line > after_line)
        .order_by(Job.line)
        .limit(limit)
    )
    if with_artifacts:
        query = query.options(selectinload(Job.artifacts))
    if status is not None:
        query = query.where(Job.status == status)
    return session.scalars(query).all()


# ---- Stored results ----------------------------------------------------------------------


def claim_batch_results(
    session: Session, *, batch_id: uuid.UUID, key: str, stale_key: str | None = None
) -> bool:
    """Record `key` as the batch's results object unless one is recorded (or only
    `stale_key`, whose bytes are gone); True for the one caller that is to write it. The row
    stays locked until that caller's transaction ends, so a concurrent caller waits here and
    then finds the key set (False)."""
    unclaimed = (
        Batch.results_key.is_(None)
        if stale_key is None
        else Batch.results_key.is_(None) | (Batch.results_key == stale_key)
    )
    result = session.execute(
        update(Batch)
        .where(Batch.id == batch_id, unclaimed)
        .values(results_key=key, results_bytes=None, results_sha256=None)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result) == 1


def record_batch_results(
    session: Session, *, batch_id: uuid.UUID, size_bytes: int, sha256: str
) -> None:
    """The size and digest of the results object just written under the claimed key."""
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id)
        .values(results_bytes=size_bytes, results_sha256=sha256)
        .execution_options(synchronize_session=False)
    )


def clear_batch_results(session: Session, *, batch_id: uuid.UUID) -> str | None:
    """Forget the batch's stored results (its jobs have changed); returns the key of the
    stale object, for the caller to delete once this commits. The batch row is locked either
    way, so a request writing the results (which holds it) finishes first and is forgotten,
    or starts after and sees the changed jobs. Their retention expiry goes with them (even
    once swept): the results made at the batch's new end get their own."""
    stale = session.scalar(select(Batch.results_key).where(Batch.id == batch_id).with_for_update())
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id)
        .values(results_key=None, results_bytes=None, results_sha256=None, expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return stale
