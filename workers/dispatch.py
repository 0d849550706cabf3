"""Publishing chunks of job ids to the broker, bounded in time: the dispatcher's last step."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from celery import Celery
from kombu.exceptions import KombuError, OperationalError

from workers.routing import RUN_JOBS_TASK, queue_for

log = logging.getLogger(__name__)

BROKER_ERRORS = (OperationalError, KombuError, OSError, TimeoutError)


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


def publish_chunks(app: Celery, chunks: Iterable[Chunk]) -> int:
    """Send each chunk's ids to its queue over one connection; returns how many went out.

    Stops at the first broker error: the caller puts the jobs of the chunks not sent back
    to wait in PostgreSQL, which remains the record of what is owed.
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
