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

from aigc.errors import JobTimeout, error_code
from db import jobs as job_queries
from db.jobs import ClaimedJob
from db.tables import Job
from models.base import Artifact, GenerationRequest, Generator
from models.errors import GenerationCanceled
from workers.model_cache import release_device_memory
from workers.retry import retry_transient
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)

STOP_POLL_INTERVAL_S = 0.5  # how stale a cancel may be before running jobs notice it
DEFAULT_TIME_LIMIT_S = 600.0

Runnable = tuple[ClaimedJob, GenerationRequest]  # type: ignore[type-arg]


def execute_jobs(runtime: WorkerRuntime, job_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Run those of the jobs that are still queued; returns how many ended in each way."""
    outcome: dict[str, int] = {}

    def claim() -> list[ClaimedJob]:
        with runtime.session_factory.begin() as session:
            return job_queries.claim_jobs(
                session, job_ids, worker=runtime.worker_name, lease_s=runtime.settings.lease_s
            )

    claimed = retry_transient(claim, what="claiming jobs")
    skipped = len(job_ids) - len(claimed)
    if skipped:
        # Canceled, already run or running elsewhere: a late or duplicate delivery does nothing.
        log.info("%d of %d jobs not queued any more, skipped", skipped, len(job_ids))
        outcome["skipped"] = skipped
    if not claimed:
        return outcome
    limit_s = max(
        runtime.settings.time_limits_s.get(job.kind, DEFAULT_TIME_LIMIT_S) for job in claimed
    )
    deadline = time.monotonic() + limit_s
    runs = {job.id: job.attempts for job in claimed}
    hard_deadline = deadline + runtime.settings.hard_limit_grace_s
    with runtime.heartbeat.holding(runs, hard_deadline):
        for _, group in groupby(claimed, key=lambda job: (job.kind, job.model)):
            _run_model_group(runtime, list(group), deadline, outcome)
    return outcome


def _count(outcome: dict[str, int], key: str, n: int = 1) -> None:
    outcome[key] = outcome.get(key, 0) + n


def _run_model_group(
    runtime: WorkerRuntime, jobs: list[ClaimedJob], deadline: float, outcome: dict[str, int]
) -> None:
    try:
        spec = runtime.catalog.resolve(jobs[0].kind, jobs[0].model)  # type: ignore[arg-type]
        generator = runtime.models.get(spec)
    except Exception as exc:
        for job in jobs:
            _fail(runtime, job, exc, outcome)
        return
    runnable: list[Runnable] = []
    for job in jobs:
        try:
            runnable.append((job, GenerationRequest(job.prompt, spec.validate_params(job.params))))
        except Exception as exc:
            _fail(runtime, job, exc, outcome)
    if runnable:
        _generate(runtime, generator, runnable, deadline, outcome)


def _generate(
    runtime: WorkerRuntime,
    generator: Generator,  # type: ignore[type-arg]
    runnable: list[Runnable],
    deadline: float,
    outcome: dict[str, int],
) -> None:
    jobs = [job for job, _ in runnable]
    try:
        outputs = generator.generate(
            [request for _, request in runnable],
            should_cancel=_stop_check(runtime, jobs, deadline),
        )
    except GenerationCanceled:
        if time.monotonic() >= deadline:
            for job in jobs:
                _fail(runtime, job, JobTimeout("the job passed its time limit"), outcome)
        else:
            log.info("%d jobs canceled while running", len(jobs))
            _count(outcome, "canceled", len(jobs))
        return
    except Exception as exc:
        release_device_memory()
        if len(runnable) == 1:
            if _is_out_of_memory(exc):
                _release(runtime, jobs[0], exc, outcome)
            else:
                _fail(runtime, jobs[0], exc, outcome)
            return
        # Split and retry: the half with a bad job fails alone in the end, and a chunk too
        # large for the device's memory becomes two that fit.
        log.warning(
            "chunk of %d failed (%s: %s); retrying halves", len(jobs), type(exc).__name__, exc
        )
        middle = len(runnable) // 2
        _generate(runtime, generator, runnable[:middle], deadline, outcome)
        _generate(runtime, generator, runnable[middle:], deadline, outcome)
        return
    _record_success(runtime, jobs, outputs, outcome)


def _is_out_of_memory(exc: Exception) -> bool:
    # torch.cuda.OutOfMemoryError, without importing torch where it is not loaded.
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def _record_success(
    runtime: WorkerRuntime,
    jobs: list[ClaimedJob],
    outputs: list[list[Artifact]],
    outcome: dict[str, int],
) -> None:
    stored = {
        job.id: _describe_artifacts(job, artifacts)
        for job, artifacts in zip(jobs, outputs, strict=True)
    }
    # Bytes first, durable, then the rows that point at them.
    runtime.store.put_many(
        (row.storage_key, output.data)
        for job, artifacts in zip(jobs, outputs, strict=True)
        for row, output in zip(stored[job.id], artifacts, strict=True)
    )

    def record() -> set[uuid.UUID]:
        with runtime.session_factory.begin() as session:
            return job_queries.succeed_jobs(
                session,
                worker=runtime.worker_name,
                runs={job.id: job.attempts for job in jobs},
                artifacts=stored,
            )

    recorded = retry_transient(record, what="recording results")
    for job_id, artifacts in stored.items():
        if job_id not in recorded:
            # Canceled while it ran, or taken over: drop the bytes nobody will look up.
            for artifact in artifacts:
                runtime.store.delete(artifact.storage_key)
    _count(outcome, "succeeded", len(recorded))
    if len(recorded) < len(stored):
        _count(outcome, "discarded", len(stored) - len(recorded))


def _describe_artifacts(job: ClaimedJob, outputs: list[Artifact]) -> list[job_queries.NewArtifact]:
    # Keyed by job and attempt: a rerun never overwrites the bytes of another attempt. The
    # folder is the id's leading (time) bits, a new one about every minute, so folders stay
    # small and a chunk's files share one.
    keys = [
        f"jobs/{job.id.hex[:8]}/{job.id}-{job.attempts}-{index}.{output.extension}"
        for index, output in enumerate(outputs)
    ]
    return [
        job_queries.NewArtifact(
            index=index,
            mime_type=output.mime_type,
            size_bytes=len(output.data),
            sha256=hashlib.sha256(output.data).hexdigest(),
            storage_key=key,
            facts=dict(output.facts),
        )
        for index, (key, output) in enumerate(zip(keys, outputs, strict=True))
    ]


def _fail(runtime: WorkerRuntime, job: ClaimedJob, exc: Exception, outcome: dict[str, int]) -> None:
    # A permanent failure is recorded on that job alone; the worker goes on serving.
    log.warning("job %s failed: %s: %s", job.id, type(exc).__name__, exc)

    def record() -> bool:
        with runtime.session_factory.begin() as session:
            return job_queries.fail_job(
                session,
                job.id,
                worker=runtime.worker_name,
                attempt=job.attempts,
                error_code=error_code(exc),
                error_message=str(exc) or type(exc).__name__,
            )

    retry_transient(record, what="recording a failure")
    _count(outcome, "failed")


def _release(
    runtime: WorkerRuntime, job: ClaimedJob, exc: Exception, outcome: dict[str, int]
) -> None:
    """A transient failure (out of memory with other work on the device): another attempt,
    from the queue, until the job has had its max attempts."""

    def record() -> str | None:
        with runtime.session_factory.begin() as session:
            return job_queries.release_job(
                session,
                job.id,
                worker=runtime.worker_name,
                attempt=job.attempts,
                max_attempts=runtime.settings.max_attempts,
                error_code=error_code(exc),
                error_message=str(exc),
            )

    status = retry_transient(record, what="releasing a job")
    log.warning("job %s: %s; now %s", job.id, type(exc).__name__, status)
    # A requeued job is republished by the dispatcher once its grace has passed.
    _count(outcome, status or "discarded")


def _stop_check(
    runtime: WorkerRuntime, jobs: list[ClaimedJob], deadline: float
) -> Callable[[], bool]:
    """A should_cancel callback: true past the time limit, or once none of the jobs is
    running any more (all were canceled). It reads the database at most every interval."""
    ids = [job.id for job in jobs]
    last_checked = time.monotonic()
    canceled = False

    def should_stop() -> bool:
        nonlocal last_checked, canceled
        now = time.monotonic()
        if now >= deadline:
            return True
        if not canceled and now - last_checked >= STOP_POLL_INTERVAL_S:
            last_checked = now
            try:
                with runtime.session_factory() as session:
                    running = session.scalar(
                        select(func.count()).where(Job.id.in_(ids), Job.status == "running")
                    )
                canceled = running == 0
            except Exception as exc:
                # Not knowing is not a reason to stop: check again at the next step.
                log.warning("could not read job status: %s", exc)
        return canceled

    return should_stop
