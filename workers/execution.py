"""Running one job: claim it, generate, store the artifacts, record the outcome."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable

from sqlalchemy import select

from db import jobs as job_queries
from db.tables import Job
from models.base import Artifact, GenerationRequest
from models.errors import GenerationCanceled
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)

CANCEL_POLL_INTERVAL_S = 0.5  # how stale a cancel may be before a running job notices it


def execute_job(runtime: WorkerRuntime, job_id: uuid.UUID) -> str:
    """Run the job if it is still queued; returns the status it ended in (or "skipped")."""
    with runtime.session_factory.begin() as session:
        job = job_queries.claim_job(session, job_id, worker=runtime.worker_name)
        if job is None:
            # Canceled, already run, or unknown: a late or duplicate delivery does nothing.
            log.info("job %s not queued any more, skipped", job_id)
            return "skipped"
        kind, model, prompt, params, attempt = (
            job.kind,
            job.model,
            job.prompt,
            job.params,
            job.attempts,
        )

    try:
        spec = runtime.catalog.resolve(kind, model)  # type: ignore[arg-type]
        generator = runtime.models.get(spec)
        request = GenerationRequest(prompt=prompt, params=spec.validate_params(params))
        should_cancel = _cancel_watch(runtime, job_id)
        outputs = generator.generate([request], should_cancel=should_cancel)[0]
    except GenerationCanceled:
        log.info("job %s canceled while running", job_id)
        return "canceled"
    except Exception as exc:
        # One job's failure is recorded on that job; the worker goes on serving.
        log.warning("job %s failed: %s: %s", job_id, type(exc).__name__, exc)
        with runtime.session_factory.begin() as session:
            job_queries.fail_job(
                session,
                job_id,
                worker=runtime.worker_name,
                error_type=type(exc).__name__,
                error_message=str(exc) or type(exc).__name__,
            )
        return "failed"

    stored = _store_artifacts(runtime, job_id, attempt, outputs)
    with runtime.session_factory.begin() as session:
        recorded = job_queries.succeed_job(
            session, job_id, worker=runtime.worker_name, artifacts=stored
        )
    if not recorded:
        # Canceled while it ran: drop the bytes nobody will look up.
        for artifact in stored:
            runtime.store.delete(artifact.storage_key)
        return "canceled"
    return "succeeded"


def _store_artifacts(
    runtime: WorkerRuntime, job_id: uuid.UUID, attempt: int, outputs: list[Artifact]
) -> list[job_queries.NewArtifact]:
    stored = []
    for index, output in enumerate(outputs):
        # Keyed by job and attempt: a rerun never overwrites the bytes of another attempt.
        key = f"jobs/{job_id}/{attempt}/{index}.{output.extension}"
        runtime.store.put(key, output.data)
        stored.append(
            job_queries.NewArtifact(
                index=index,
                mime_type=output.mime_type,
                size_bytes=len(output.data),
                sha256=hashlib.sha256(output.data).hexdigest(),
                storage_key=key,
                facts=dict(output.facts),
            )
        )
    return stored


def _cancel_watch(runtime: WorkerRuntime, job_id: uuid.UUID) -> Callable[[], bool]:
    """A should_cancel callback that reads the job's status at most every poll interval."""
    last_checked = time.monotonic()
    canceled = False

    def should_cancel() -> bool:
        nonlocal last_checked, canceled
        now = time.monotonic()
        if not canceled and now - last_checked >= CANCEL_POLL_INTERVAL_S:
            last_checked = now
            with runtime.session_factory() as session:
                status = session.scalar(select(Job.status).where(Job.id == job_id))
            canceled = status == "canceled"
        return canceled

    return should_cancel
