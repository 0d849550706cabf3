"""Celery tasks: thin wrappers that hand job ids to workers.execution."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import celeryd_after_setup

from workers.execution import execute_jobs
from workers.messages import parse_job_ids
from workers.routing import RUN_JOBS_TASK
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


@shared_task(  # type: ignore[untyped-decorator]
    name=RUN_JOBS_TASK, Strategy="workers.messages:checked_strategy"
)
def run_jobs(*args: Any, **kwargs: Any) -> dict[str, int]:
    """`run_jobs([job_id, ...])`. The signature takes anything so that a message with the
    wrong arguments is discarded in one log line rather than failing inside Celery."""
    job_ids = parse_job_ids(args, kwargs)
    if job_ids is None:
        return {}
    return execute_jobs(get_runtime(), job_ids)


@celeryd_after_setup.connect  # type: ignore[untyped-decorator]
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
