"""Running a chunk of jobs: claim them, generate as one batch, store the artifacts, record
each job's outcome. A job that breaks its chunk is retried alone so its neighbours still
succeed; a chunk that does not fit (out of memory) is split and retried.

Every read and write of the jobs table goes through `runtime.jobs` (a db.job_store.JobStore),
each wrapped in retry_transient, so the unit tests can drive this module without PostgreSQL."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from itertools import groupby

from aigc.errors import ErrorCode, JobTimeout, error_code
from aigc.labels.text import sidecar_key, sidecar_keys
from aigc.vocab import JobStatus
from db.jobs import ClaimedJob, NewArtifact
from models.base import Artifact, CancelCheck, GenerationRequest, Generator
from models.errors import GenerationCanceled
from workers import metrics
from workers.labelling import Labelled, label_outputs
from workers.model_cache import release_device_memory
from workers.moderation import screen_chunk_outputs
from workers.retry import retry_transient
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)

# A running chunk asks the database whether its jobs were canceled at the first step (token,
# denoising step) that ends this long after the previous check. The check is one indexed
# lookup (about 0.5 ms here), so it costs at most about 1% of generation time, and any step
# longer than this (an image's denoising step on CPU, most on a GPU) is checked: a canceled
# job stops within one step, or within this interval plus one step for faster steps.
STOP_CHECK_INTERVAL_S = 0.05
DEFAULT_TIME_LIMIT_S = 600.0

Runnable = tuple[ClaimedJob, GenerationRequest]  # type: ignore[type-arg]
Runs = Mapping[uuid.UUID, int]  # job id -> the attempt this worker runs


def execute_jobs(runtime: WorkerRuntime, job_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Run those of the jobs that are still queued; returns how many ended in each way."""
    with metrics.BUSY.running():
        return _execute(runtime, job_ids)


def _execute(runtime: WorkerRuntime, job_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    outcome: dict[str, int] = {}

    claimed = retry_transient(
        lambda: runtime.jobs.claim(
            job_ids, worker=runtime.worker_name, lease_s=runtime.settings.lease_s
        ),
        what="claiming jobs",
    )
    skipped = len(job_ids) - len(claimed)
    if skipped:
        # Canceled, already run or running elsewhere: a late or duplicate delivery does nothing.
        log.info("%d of %d jobs not queued any more, skipped", skipped, len(job_ids))
        outcome["skipped"] = skipped
    if not claimed:
        return outcome
    metrics.chunk_claimed(claimed)
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
        model_revision = runtime.models.revision(spec.name)
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
        _generate(runtime, generator, runnable, model_revision, deadline, outcome)


def _generate(
    runtime: WorkerRuntime,
    generator: Generator,  # type: ignore[type-arg]
    runnable: list[Runnable],
    model_revision: str,
    deadline: float,
    outcome: dict[str, int],
) -> None:
    jobs = [job for job, _ in runnable]
    runs = {job.id: job.attempts for job in jobs}
    progress = ProgressRecorder(runtime, runs)
    try:
        outputs = generator.generate(
            [request for _, request in runnable],
            on_progress=progress.report,
            should_cancel=stop_check(runtime, runs, deadline),
        )
    except GenerationCanceled:
        progress.flush()
        if time.monotonic() >= deadline:
            for job in jobs:
                _fail(runtime, job, JobTimeout("the job passed its time limit"), outcome)
        else:
            log.info("%d jobs canceled while running", len(jobs))
            _count(outcome, "canceled", len(jobs))
            for job in jobs:
                metrics.job_finished(job, JobStatus.CANCELED)
        return
    except Exception as exc:
        release_device_memory()
        if len(runnable) == 1:
            if error_code(exc) == ErrorCode.OUT_OF_MEMORY:
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
        _generate(runtime, generator, runnable[:middle], model_revision, deadline, outcome)
        _generate(runtime, generator, runnable[middle:], model_revision, deadline, outcome)
        return
    _record_success(runtime, jobs, outputs, model_revision, progress.last, outcome)


def _record_success(
    runtime: WorkerRuntime,
    jobs: list[ClaimedJob],
    outputs: list[list[Artifact]],
    model_revision: str,
    progress: tuple[int, int] | None,
    outcome: dict[str, int],
) -> None:
    # Generated text passes moderation before anything is stored; a refused job ends blocked.
    jobs, outputs = screen_chunk_outputs(runtime, jobs, outputs, outcome)
    if not jobs:
        return
    labelled: dict[uuid.UUID, list[Labelled]] = {}
    for job, job_outputs in zip(jobs, outputs, strict=True):
        try:
            labelled[job.id] = label_outputs(
                runtime.labels,
                job,
                job_outputs,
                model_revision=model_revision,
                # The deployment's switch marks every team's; a team's option its own.
                explicit=runtime.settings.explicit_labels or job.explicit_labels,
                credentials=runtime.credentials,
            )
        except Exception as exc:
            # Never stored unlabelled: a model output the labeller cannot read fails its job.
            _fail(runtime, job, exc, outcome)
    jobs = [job for job in jobs if job.id in labelled]
    if not jobs:
        return
    stored = {job.id: _describe_artifacts(job, labelled[job.id]) for job in jobs}
    # Bytes first, durable, then the rows that point at them. A store blip (S3 restarting)
    # is waited out like a database one; each put is atomic, so a retry rewrites whole objects.
    items: list[tuple[str, bytes]] = []
    for job in jobs:
        for row, output in zip(stored[job.id], labelled[job.id], strict=True):
            items.append((row.storage_key, output.artifact.data))
            if output.sidecar is not None:
                items.append((sidecar_key(row.storage_key), output.sidecar))
    retry_transient(lambda: runtime.store.put_many(items), what="storing artifacts")

    recorded = retry_transient(
        lambda: runtime.jobs.succeed(
            {job.id: job.attempts for job in jobs},
            worker=runtime.worker_name,
            artifacts=stored,
            progress=progress,
            model_revision=model_revision,
        ),
        what="recording results",
    )
    for job_id, artifacts in stored.items():
        if job_id not in recorded:
            # Canceled while it ran, or taken over: drop the bytes nobody will look up.
            keys = [artifact.storage_key for artifact in artifacts]
            for key in keys + sidecar_keys(keys):
                runtime.store.delete(key)
    _count(outcome, "succeeded", len(recorded))
    for job in jobs:
        if job.id in recorded:
            metrics.job_finished(job, JobStatus.SUCCEEDED)
    if len(recorded) < len(stored):
        _count(outcome, "discarded", len(stored) - len(recorded))


def _describe_artifacts(job: ClaimedJob, outputs: list[Labelled]) -> list[NewArtifact]:
    # Keyed by job and attempt: a rerun never overwrites the bytes of another attempt. The
    # folder is the id's leading (time) bits, a new one about every minute, so folders stay
    # small and a chunk's files share one.
    keys = [
        f"jobs/{job.id.hex[:8]}/{job.id}-{job.attempts}-{index}.{output.artifact.extension}"
        for index, output in enumerate(outputs)
    ]
    return [
        NewArtifact(
            id=output.id,
            index=index,
            mime_type=output.artifact.mime_type,
            size_bytes=len(output.artifact.data),
            sha256=hashlib.sha256(output.artifact.data).hexdigest(),
            storage_key=key,
            facts=dict(output.artifact.facts),
        )
        for index, (key, output) in enumerate(zip(keys, outputs, strict=True))
    ]


def _fail(runtime: WorkerRuntime, job: ClaimedJob, exc: Exception, outcome: dict[str, int]) -> None:
    # A permanent failure is recorded on that job alone; the worker goes on serving.
    log.warning("job %s failed: %s: %s", job.id, type(exc).__name__, exc)

    retry_transient(
        lambda: runtime.jobs.fail(
            job.id,
            worker=runtime.worker_name,
            attempt=job.attempts,
            error_code=error_code(exc),
            error_message=str(exc) or type(exc).__name__,
        ),
        what="recording a failure",
    )
    _count(outcome, "failed")
    metrics.job_finished(job, JobStatus.FAILED)


def _release(
    runtime: WorkerRuntime, job: ClaimedJob, exc: Exception, outcome: dict[str, int]
) -> None:
    """A transient failure (out of memory with other work on the device): another attempt,
    from the queue, until the job has had its max attempts."""

    status = retry_transient(
        lambda: runtime.jobs.release(
            job.id,
            worker=runtime.worker_name,
            attempt=job.attempts,
            max_attempts=runtime.settings.max_attempts,
            error_code=error_code(exc),
            error_message=str(exc),
        ),
        what="releasing a job",
    )
    log.warning("job %s: %s; now %s", job.id, type(exc).__name__, status)
    # A requeued job waits in PostgreSQL again; the outcome's NOTIFY wakes the dispatcher.
    _count(outcome, status or "discarded")
    if status is not None:
        metrics.job_finished(job, metrics.REQUEUED if status == JobStatus.QUEUED else status)


def stop_check(runtime: WorkerRuntime, runs: Runs, deadline: float) -> CancelCheck:
    """A should_cancel callback: true past the time limit, or once none of the runs is
    running any more (all were canceled, or taken over after a lost lease). The database is
    asked at the first call (the jobs may have been canceled while the model loaded), then
    at most every STOP_CHECK_INTERVAL_S."""
    last_checked = float("-inf")
    stopped = False

    def should_stop() -> bool:
        nonlocal last_checked, stopped
        now = time.monotonic()
        if now >= deadline:
            return True
        if not stopped and now - last_checked >= STOP_CHECK_INTERVAL_S:
            last_checked = now
            try:
                stopped = not runtime.jobs.still_running(runs, worker=runtime.worker_name)
            except Exception as exc:
                # Not knowing is not a reason to stop: check again at a later step.
                log.warning("could not read job status: %s", exc)
        return stopped

    return should_stop


class ProgressRecorder:
    """The on_progress callback of one generate() call: stores (steps done, total) on the
    runs' jobs at most every `settings.progress_interval_s`. The last report is stored with
    the outcome (`last` goes in with `succeeded`; `flush` after a cancel or time limit), so
    a chunk shorter than the interval costs no extra write. Progress is advisory: a write
    that fails is logged and skipped rather than retried, and generation never waits on it."""

    def __init__(self, runtime: WorkerRuntime, runs: Runs) -> None:
        self._runtime = runtime
        self._runs = runs
        self._interval_s = runtime.settings.progress_interval_s
        self._last_write = time.monotonic()
        self.last: tuple[int, int] | None = None
        self._stored: tuple[int, int] | None = None

    def report(self, done: int, total: int) -> None:
        self.last = (done, total)
        now = time.monotonic()
        if now - self._last_write >= self._interval_s:
            self._last_write = now
            self._store(done, total, final=False)

    def flush(self) -> None:
        """Store the last report if it is not stored yet; also on jobs canceled meanwhile,
        so a canceled job shows the step its worker stopped at."""
        if self.last is not None and self.last != self._stored:
            self._store(*self.last, final=True)

    def _store(self, done: int, total: int, *, final: bool) -> None:
        try:
            written = self._runtime.jobs.store_progress(
                self._runs, worker=self._runtime.worker_name, done=done, total=total, final=final
            )
        except Exception as exc:
            log.warning("could not store progress: %s", exc)
            return
        # Rows canceled meanwhile were not written: the final flush writes them.
        if written == len(self._runs):
            self._stored = (done, total)
