"""The words the whole system shares: job and batch statuses, priorities, kinds and batch
APIs, with the sets of statuses that matter beside them. Tables' check constraints, API
schemas, routing, the CLI and the tests all use these; StrEnum members compare equal to
their strings, so they go into SQL, JSON and Celery messages as they are."""

from __future__ import annotations

from enum import StrEnum

# models/ imports nothing of ours, so the kinds are defined there and shared from here.
from models.params import KINDS, Kind

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "BatchApi",
    "BatchStatus",
    "DEFAULT_BATCH_PRIORITY",
    "DEFAULT_JOB_PRIORITY",
    "FINAL_BATCH_STATUSES",
    "FINAL_JOB_STATUSES",
    "JobStatus",
    "KINDS",
    "Kind",
    "Priority",
    "Role",
]


class JobStatus(StrEnum):
    """queued → running → succeeded | failed | canceled (and running → queued on a retry);
    queued → blocked when moderation refuses the prompt before dispatch, running → blocked
    when it refuses a generated text."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    BLOCKED = "blocked"


ACTIVE_JOB_STATUSES: tuple[JobStatus, ...] = (JobStatus.QUEUED, JobStatus.RUNNING)
FINAL_JOB_STATUSES: tuple[JobStatus, ...] = (
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.CANCELED,
    JobStatus.BLOCKED,
)


class BatchStatus(StrEnum):
    """Derived from the batch's jobs on every read (db.batches.batch_status)."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELING = "canceling"
    CANCELED = "canceled"


FINAL_BATCH_STATUSES: tuple[BatchStatus, ...] = (
    BatchStatus.COMPLETED,
    BatchStatus.FAILED,
    BatchStatus.CANCELED,
)


class Priority(StrEnum):
    """Tiers, in the order a worker drains them: a queue per kind and tier."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


# Interactive jobs go before bulk work: a job submitted while a large batch waits starts
# before the batch's remaining jobs.
DEFAULT_JOB_PRIORITY = Priority.NORMAL
DEFAULT_BATCH_PRIORITY = Priority.LOW


class Role(StrEnum):
    """What an API key may do: `admin` sees and manages every team; `member` works inside
    its own team."""

    ADMIN = "admin"
    MEMBER = "member"


class BatchApi(StrEnum):
    """Which API created a batch, and so the shape it is served in."""

    NATIVE = "native"
    OPENAI = "openai"
