"""In-memory stand-ins for the unit tier: a jobs table with the same conditional-update
rules as db.jobs, a generator that counts steps, and a runtime that holds them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from aigc.catalog import build_catalog
from aigc.errors import ErrorCode
from aigc.ids import uuid7
from aigc.labels.label import LabelSigner
from aigc.moderation import Match, Rule
from aigc.settings import Settings
from aigc.storage import LocalStore
from aigc.vocab import JobStatus
from db.jobs import ClaimedJob, NewArtifact
from models.artifacts import text_artifact
from models.base import Artifact, CancelCheck, GenerationRequest, Generator, ProgressCallback
from models.errors import GenerationCanceled
from models.params import Kind, TextParams
from workers.runtime import WorkerRuntime

WORKER = "unit-worker"
TEST_LABEL_KEY = b"unit-test-label-key-of-32-bytes!"
FAKE_REVISION = "f" * 64  # what FakeModels says of any model's weights


@dataclass
class FakeJob:
    id: uuid.UUID
    prompt: str
    params: dict[str, Any]
    kind: str = Kind.TEXT
    model: str = "echo"
    team_id: uuid.UUID = field(default_factory=uuid7)
    status: str = JobStatus.QUEUED
    attempts: int = 0
    worker: str | None = None
    error_code: str | None = None
    progress: tuple[int, int] | None = None
    artifacts: list[NewArtifact] = field(default_factory=list)
    model_revision: str | None = None
    explicit_labels: bool = False  # the team's option


class FakeJobStore:
    """A jobs table in a dict, following db.jobs' rules: a change applies only to rows in
    the expected state, run by this worker's attempt."""

    def __init__(self) -> None:
        self.jobs: dict[uuid.UUID, FakeJob] = {}
        self.progress_writes: list[tuple[int, int]] = []
        self.status_checks = 0
        # Raised (then cleared) by the next claim: a database blip.
        self.claim_error: Exception | None = None
        # Global moderation rules; their count is their version.
        self.global_rules: list[Rule] = []

    def add(self, prompt: str, **params: Any) -> uuid.UUID:
        job_id = uuid7()  # time-ordered, as real ids: a chunk runs in submission order
        self.jobs[job_id] = FakeJob(job_id, prompt, params)
        return job_id

    def cancel(self, job_id: uuid.UUID) -> None:
        """What the API's cancel does."""
        self.jobs[job_id].status = JobStatus.CANCELED

    def _ours(self, job_id: uuid.UUID, attempt: int, worker: str, statuses: Sequence[str]) -> bool:
        job = self.jobs[job_id]
        return job.attempts == attempt and job.worker == worker and job.status in statuses

    def claim(
        self, job_ids: Sequence[uuid.UUID], *, worker: str, lease_s: float
    ) -> list[ClaimedJob]:
        if self.claim_error is not None:
            error, self.claim_error = self.claim_error, None
            raise error
        claimed = []
        for job_id in sorted(job_ids):
            job = self.jobs[job_id]
            if job.status != JobStatus.QUEUED:
                continue
            job.status, job.worker, job.attempts = JobStatus.RUNNING, worker, job.attempts + 1
            claimed.append(
                ClaimedJob(
                    job.id,
                    job.kind,
                    job.model,
                    job.prompt,
                    job.params,
                    job.attempts,
                    job.team_id,
                    explicit_labels=job.explicit_labels,
                )
            )
        return claimed

    def renew_leases(self, runs: Mapping[uuid.UUID, int], *, worker: str, lease_s: float) -> int:
        return sum(self._ours(j, a, worker, [JobStatus.RUNNING]) for j, a in runs.items())

    def still_running(self, runs: Mapping[uuid.UUID, int], *, worker: str) -> bool:
        self.status_checks += 1
        return any(self._ours(j, a, worker, [JobStatus.RUNNING]) for j, a in runs.items())

    def store_progress(
        self,
        runs: Mapping[uuid.UUID, int],
        *,
        worker: str,
        done: int,
        total: int,
        final: bool = False,
    ) -> int:
        statuses = [JobStatus.RUNNING, JobStatus.CANCELED] if final else [JobStatus.RUNNING]
        self.progress_writes.append((done, total))
        written = 0
        for job_id, attempt in runs.items():
            if self._ours(job_id, attempt, worker, statuses):
                self.jobs[job_id].progress = (done, total)
                written += 1
        return written

    def succeed(
        self,
        runs: Mapping[uuid.UUID, int],
        *,
        worker: str,
        artifacts: Mapping[uuid.UUID, Sequence[NewArtifact]],
        progress: tuple[int, int] | None = None,
        model_revision: str | None = None,
    ) -> set[uuid.UUID]:
        recorded = set()
        for job_id, attempt in runs.items():
            if self._ours(job_id, attempt, worker, [JobStatus.RUNNING]):
                self.jobs[job_id].status = JobStatus.SUCCEEDED
                self.jobs[job_id].artifacts = list(artifacts[job_id])
                self.jobs[job_id].progress = progress or self.jobs[job_id].progress
                self.jobs[job_id].model_revision = model_revision
                recorded.add(job_id)
        return recorded

    def fail(
        self, job_id: uuid.UUID, *, worker: str, attempt: int, error_code: str, error_message: str
    ) -> bool:
        if not self._ours(job_id, attempt, worker, [JobStatus.RUNNING]):
            return False
        self.jobs[job_id].status, self.jobs[job_id].error_code = JobStatus.FAILED, error_code
        return True

    def release(
        self,
        job_id: uuid.UUID,
        *,
        worker: str,
        attempt: int,
        max_attempts: int,
        error_code: str,
        error_message: str,
    ) -> str | None:
        if not self._ours(job_id, attempt, worker, [JobStatus.RUNNING]):
            return None
        job = self.jobs[job_id]
        job.error_code = error_code
        if attempt < max_attempts:
            job.status, job.worker, job.progress = JobStatus.QUEUED, None, None
        else:
            job.status = JobStatus.FAILED
        return job.status

    def block(self, job_id: uuid.UUID, *, worker: str, attempt: int, match: Match) -> str | None:
        if not self._ours(job_id, attempt, worker, (JobStatus.RUNNING,)):
            return None
        job = self.jobs[job_id]
        job.status, job.error_code = JobStatus.BLOCKED, ErrorCode.CONTENT_BLOCKED
        return "fake-team"

    def moderation_rules(
        self, known_version: int | None
    ) -> tuple[int, dict[uuid.UUID | None, list[Rule]]] | None:
        version = len(self.global_rules)
        return None if version == known_version else (version, {None: list(self.global_rules)})

    def statuses(self) -> dict[str, str]:
        """Each job's status, by prompt."""
        return {job.prompt: job.status for job in self.jobs.values()}


class OutOfMemoryError(RuntimeError):
    """Named as torch.cuda.OutOfMemoryError, which is how workers recognise it."""


class FakeGenerator(Generator[TextParams]):
    """Text by counting: `max_new_tokens` steps, each reported and preceded by a cancel
    check, like the real generators. `fail` decides, per batch of prompts, what to raise."""

    kind: ClassVar[Kind] = Kind.TEXT

    def __init__(
        self,
        fail: Callable[[list[str]], Exception | None] = lambda prompts: None,
        on_step: Callable[[int], None] = lambda step: None,
    ) -> None:
        super().__init__("fake")
        self.fail = fail
        self.on_step = on_step
        self.batches: list[list[str]] = []
        self.steps_run = 0
        self.warmups = 0

    def load(self) -> None:
        """Nothing to load."""

    def warmup(self) -> None:
        self.warmups += 1

    def generate(
        self,
        requests: Sequence[GenerationRequest[TextParams]],
        *,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> list[list[Artifact]]:
        prompts = [request.prompt for request in requests]
        self.batches.append(prompts)
        error = self.fail(prompts)
        if error is not None:
            raise error
        total = max(request.params.max_new_tokens for request in requests)
        for step in range(1, total + 1):
            if should_cancel is not None and should_cancel():
                raise GenerationCanceled("generation was canceled")
            self.steps_run += 1
            if on_progress is not None:
                on_progress(step, total)
            self.on_step(step)
        return [[text_artifact(prompt.upper(), 1)] for prompt in prompts]


class FakeModels:
    """The model cache, always answering with one generator."""

    def __init__(self, generator: Generator) -> None:  # type: ignore[type-arg]
        self.generator = generator

    def get(self, spec: Any) -> Generator:  # type: ignore[type-arg]
        return self.generator

    def revision(self, name: str) -> str:
        return FAKE_REVISION


class NoHeartbeat:
    """Leases need no renewing in memory."""

    @contextmanager
    def holding(self, runs: Mapping[uuid.UUID, int], hard_deadline: float) -> Iterator[None]:
        yield


def make_runtime(
    tmp_path: Path,
    jobs: FakeJobStore,
    generator: Generator,
    **settings: Any,  # type: ignore[type-arg]
) -> WorkerRuntime:
    config = Settings(profile="offline", artifact_dir=tmp_path / "artifacts", **settings)
    return WorkerRuntime(
        settings=config,
        jobs=jobs,
        store=LocalStore(config.artifact_dir),
        catalog=build_catalog(config),
        models=FakeModels(generator),  # type: ignore[arg-type]
        heartbeat=NoHeartbeat(),  # type: ignore[arg-type]
        labels=LabelSigner(TEST_LABEL_KEY, config.label_producer),
        worker_name=WORKER,
    )


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in (root / "artifacts").rglob("*") if path.is_file())
