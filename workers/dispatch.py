"""Publishing job ids to the broker, bounded in time. The API calls it after commit."""

from __future__ import annotations

import logging
import uuid

from celery import Celery
from kombu.exceptions import KombuError, OperationalError

from workers.routing import RUN_JOB_TASK, queue_for

log = logging.getLogger(__name__)


def publish_job(app: Celery, job_id: uuid.UUID, kind: str) -> bool:
    """Send the job's id to its kind's queue; False when the broker could not take it.

    A job that could not be published stays `queued` in PostgreSQL, which remains the
    record of what is owed.
    """
    try:
        app.send_task(
            RUN_JOB_TASK,
            args=[str(job_id)],
            queue=queue_for(kind),
            retry=False,
            ignore_result=True,
        )
    except (OperationalError, KombuError, OSError, TimeoutError) as exc:
        log.warning("broker unavailable, job %s left queued: %s", job_id, exc)
        return False
    return True
