"""Celery tasks: thin wrappers that hand job ids to workers.execution."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import shared_task
from celery.signals import celeryd_after_setup

from workers.execution import execute_jobs
from workers.routing import RUN_JOBS_TASK
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


@shared_task(name=RUN_JOBS_TASK)
def run_jobs(job_ids: list[str]) -> dict[str, int]:
    return execute_jobs(get_runtime(), [uuid.UUID(job_id) for job_id in job_ids])


@celeryd_after_setup.connect
def _preload_models(sender: str, instance: Any, **_: Any) -> None:
    """Load the default model of each kind this worker consumes before it takes any job:
    the first job on a model then pays no load."""
    runtime = get_runtime()
    if not runtime.settings.preload_models:
        return
    kinds = dict.fromkeys(queue.split(".")[0] for queue in instance.app.amqp.queues.consume_from)
    for kind in kinds:
        if kind in runtime.catalog.defaults:
            spec = runtime.catalog.resolve(kind, None)
            try:
                runtime.models.get(spec)
            except Exception as exc:
                # A model that cannot load fails its jobs with the reason; the worker still serves.
                log.error("could not preload %s: %s", spec.name, exc)
