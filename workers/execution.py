"""Running a chunk of jobs: claim them, generate as one batch, store the artifacts, record
each job's outcome. A job that breaks its chunk is retried alone so its neighbours still
succeed; a chunk that does not fit (out of memory) is split and retried."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from itertools import groupby

from sqlalchemy import func, select

from db import jobs as job_queries
from db.tables import Job
from models.base import Artifact, GenerationRequest, Generator
from models.errors import GenerationCanceled
from workers.model_cache import release_device_memory
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)

CANCEL_POLL_INTERVAL_S = 0.5  # how stale a cancel may be before running jobs notice it


def execute_jobs(runtime: WorkerRuntime, job_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Run those of the jobs that are still queued; returns how many ended in each way."""
    outcome: dict[str, int] = {}
    with runtime.session_factory.begin() as session:
        claimed = job_queries.claim_jobs(session, job_ids, worker=runtime.worker_name)
        session.expunge_all()
    skipped = len(job_ids) - len(claimed)
    if skipped:
        # Canceled, already run or running elsewhere: a late or duplicate delivery does nothing.
        log.info("%d of %d jobs not queued any more, skipped", skipped, len(job_ids))
        outcome["skipped"] = skipped
    for _, group in groupby(claimed, key=lambda job: (job.kind, job.model)):
        _run_model_group(runtime, list(group), outcome)
    return outcome


def _run_model_group(runtime: WorkerRuntime, jobs: list[Job], outcome: dict[str, int]) -> None:
    try:
        spec = runtime.catalog.resolve(jobs[0].kind, jobs[0].model)  # type: ignore[arg-type]
        generator = runtime.models.get(spec)
    except Exception as exc:
        for job in jobs:
            _fail(runtime, job, exc, outcome)
        return
    runnable: list[tuple[Job, GenerationRequest]] = []  # type: ignore[type-arg]
    for job in jobs:
        try:
            runnable.append((job, GenerationRequest(job.prompt, spec.validate_params(job.params))))
        except Exception as exc:
            _fail(runtime, job, exc, outcome)
    if runnable:
        _generate(runtime, generator, runnable, outcome)


def _generate(
    runtime: WorkerRuntime,
    generator: Generator,  # type: ignore[type-arg]
    runnable: list[tuple[Job, GenerationRequest]],  # type: ignore[type-arg]
    outcome: dict[str, int],
) -> None:
    jobs = [job for job, _ in runnable]
    try:
        outputs = generator.generate(
            [request for _, request in runnable], should_cancel=_cancel_watch(runtime, jobs)
        )
    except GenerationCanceled:
        log.info("%d jobs canceled while running", len(jobs))
        outcome["canceled"] = outcome.get("canceled", 0) + len(jobs)
        return
    except Exception as exc:
        if len(runnable) == 1:
            _fail(runtime, jobs[0], exc, outcome)
            return
        # Split and retry: the half with a bad job fails alone in the end, and a chunk too
        # large for the device's memory becomes two that fit.
        log.warning(
            "chunk of %d failed (%s: %s); retrying in halves", len(jobs), type(exc).__name__, exc
        )
        release_device_memory()
        middle = len(runnable) // 2
        _generate(runtime, generator, runnable[:middle], outcome)
        _generate(runtime, generator, runnable[middle:], outcome)
        return
    _record_success(runtime, jobs, outputs, outcome)


def _record_success(
    runtime: WorkerRuntime, jobs: list[Job], outputs: list[list[Artifact]], outcome: dict[str, int]
) -> None:
    stored = {
        job.id: _store_artifacts(runtime, job, artifacts)
        for job, artifacts in zip(jobs, outputs, strict=True)
    }
    with runtime.session_factory.begin() as session:
        recorded = job_queries.succeed_jobs(session, worker=runtime.worker_name, artifacts=stored)
    for job_id, artifacts in stored.items():
        if job_id not in recorded:
            # Canceled while it ran: drop the bytes nobody will look up.
            for artifact in artifacts:
                runtime.store.delete(artifact.storage_key)
    outcome["succeeded"] = outcome.get("succeeded", 0) + len(recorded)
    if len(recorded) < len(stored):
        outcome["canceled"] = outcome.get("canceled", 0) + len(stored) - len(recorded)


def _store_artifacts(
    runtime: WorkerRuntime, job: Job, outputs: list[Artifact]
) -> list[job_queries.NewArtifact]:
    stored = []
    for index, output in enumerate(outputs):
        # Keyed by job and attempt: a rerun never overwrites the bytes of another attempt.
        key = f"jobs/{job.id}/{job.attempts}/{index}.{output.extension}"
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


def _fail(runtime: WorkerRuntime, job: Job, exc: Exception, outcome: dict[str, int]) -> None:
    # One job's failure is recorded on that job; the worker goes on serving.
    log.warning("job %s failed: %s: %s", job.id, type(exc).__name__, exc)
    with runtime.session_factory.begin() as session:
        job_queries.fail_job(
            session,
            job.id,
            worker=runtime.worker_name,
            error_type=type(exc).__name__,
            error_message=str(exc) or type(exc).__name__,
        )
    outcome["failed"] = outcome.get("failed", 0) + 1


def _cancel_watch(runtime: WorkerRuntime, jobs: list[Job]) -> Callable[[], bool]:
    """A should_cancel callback, true once none of the jobs is running any more (all were
    canceled); it reads the database at most every poll interval."""
    ids = [job.id for job in jobs]
    last_checked = time.monotonic()
    canceled = False

    def should_cancel() -> bool:
        nonlocal last_checked, canceled
        now = time.monotonic()
        if not canceled and now - last_checked >= CANCEL_POLL_INTERVAL_S:
            last_checked = now
            with runtime.session_factory() as session:
                running = session.scalar(
                    select(func.count()).where(Job.id.in_(ids), Job.status == "running")
                )
            canceled = running == 0
        return canceled

    return should_cancel
