"""Publishing job ids to the broker after commit, in chunks, bounded in time."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from celery import Celery
from kombu.exceptions import KombuError, OperationalError

from aigc.vocab import DEFAULT_JOB_PRIORITY
from workers.routing import RUN_JOBS_TASK, queue_for

log = logging.getLogger(__name__)

BROKER_ERRORS = (OperationalError, KombuError, OSError, TimeoutError)


@dataclass(frozen=True)
class JobRef:
    """What dispatch needs of a job: where it goes and what it can share a chunk with."""

    id: uuid.UUID
    kind: str
    model: str
    priority: str = DEFAULT_JOB_PRIORITY
    batch_id: uuid.UUID | None = None

    @classmethod
    def of(cls, job: Any) -> JobRef:
        """From a job row (or any object with its id, kind, model, priority and batch_id)."""
        return cls(job.id, job.kind, job.model, job.priority, job.batch_id)


@dataclass(frozen=True)
class Chunk:
    """Job ids that travel as one message and run as one batched generation."""

    kind: str
    priority: str
    job_ids: tuple[uuid.UUID, ...]
    batch_id: uuid.UUID | None = None

    @property
    def queue(self) -> str:
        return queue_for(self.kind, self.priority)

    def describe(self) -> str:
        """What Flower and the worker's log show as the task's arguments: the kind, the
        number of jobs and the batch (the message itself carries only ids)."""
        n = len(self.job_ids)
        what = f"{self.kind} job {self.job_ids[0]}" if n == 1 else f"{self.kind} chunk of {n} jobs"
        return what if self.batch_id is None else f"{what}, batch {self.batch_id}"


def chunk_jobs(jobs: Sequence[JobRef], sizes: Mapping[str, int]) -> list[Chunk]:
    """Consecutive jobs of the same kind, model, priority and batch, cut to the model's chunk
    size (`sizes[model]`, else `sizes[kind]`, else 1).

    Input order is kept, so a batch's early lines are dispatched first.
    """
    chunks: list[Chunk] = []
    for (kind, model, priority, batch_id), group in groupby(
        jobs, key=lambda job: (job.kind, job.model, job.priority, job.batch_id)
    ):
        ids = [job.id for job in group]
        size = max(1, sizes.get(model, sizes.get(kind, 1)))
        chunks.extend(
            Chunk(kind, priority, tuple(ids[start : start + size]), batch_id)
            for start in range(0, len(ids), size)
        )
    return chunks


def publish_chunks(app: Celery, chunks: Iterable[Chunk]) -> int:
    """Send each chunk's ids to its queue over one connection; returns how many went out.

    Stops at the first broker error: jobs not published stay `queued` in PostgreSQL, which
    remains the record of what is owed.
    """
    published = 0
    try:
        with app.producer_or_acquire() as producer:
            for chunk in chunks:
                app.send_task(
                    RUN_JOBS_TASK,
                    args=[[str(job_id) for job_id in chunk.job_ids]],
                    argsrepr=chunk.describe(),
                    queue=chunk.queue,
                    producer=producer,
                    retry=False,
                    ignore_result=True,
                )
                published += 1
    except BROKER_ERRORS as exc:
        log.warning(
            "broker unavailable after %d messages; the rest stay queued: %s", published, exc
        )
    return published


def publish_job(app: Celery, job: JobRef) -> bool:
    """Send one job; False when the broker could not take it (the job stays queued)."""
    return publish_chunks(app, chunk_jobs([job], {})) == 1
