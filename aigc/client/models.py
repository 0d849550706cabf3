"""What the API answers, as typed objects. Unknown fields are kept (extra="allow"), so a
newer server's additions never break an older client."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from aigc.vocab import FINAL_BATCH_STATUSES, FINAL_JOB_STATUSES

# How a batch's results download: JSONL (one ResultLine per line) or CSV for spreadsheets.
ResultsFormat = Literal["jsonl", "csv"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class JobModeration(_Model):
    """Why moderation refused a job: the rule, its reason code, the stage (input/output)."""

    rule: str
    rule_id: str
    reason_code: str
    stage: str


class JobError(_Model):
    code: str
    message: str
    # Only for a blocked job (code content_blocked).
    moderation: JobModeration | None = None


class JobProgress(_Model):
    done: int
    total: int


class Artifact(_Model):
    id: str
    index: int
    mime_type: str
    bytes: int
    sha256: str
    url: str
    expires_at: datetime | None = None
    # Only in batch results: a text artifact's output, inline.
    text: str | None = None
    # Its signed AI-generated label; PNG and WAV carry it inside too, text only here.
    label: dict[str, Any] | None = None


class ProvenanceModel(_Model):
    name: str
    kind: str
    source: str
    # sha256 of the weights files the worker loaded; labels carry it as model_revision.
    revision: str


class ProvenanceTimings(_Model):
    queued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    queued_s: float | None = None
    run_s: float | None = None
    attempts: int = 0


class Provenance(_Model):
    """Where an artifact came from (GET /v1/artifacts/{id}/provenance)."""

    artifact: dict[str, Any]
    job_id: str
    model: ProvenanceModel
    prompt: str
    params: dict[str, Any] = {}
    seed: int | None = None
    team: str
    key_prefix: str | None = None
    batch_id: str | None = None
    # Its line in the batch's input, from 1.
    line: int | None = None
    custom_id: str | None = None
    worker: str | None = None
    timings: ProvenanceTimings
    # The artifacts it was made from; none yet (no job takes an input artifact).
    inputs: list[dict[str, Any]] = []
    label: dict[str, Any]
    cache_hit: bool = False
    # A cache hit's source job: the one that made the bytes, and that its label names.
    cached_from: str | None = None


class Job(_Model):
    id: str
    kind: str
    model: str
    prompt: str
    params: dict[str, Any] = {}
    status: str
    priority: str
    error: JobError | None = None
    progress: JobProgress | None = None
    attempts: int = 0
    metadata: dict[str, Any] = {}
    batch_id: str | None = None
    custom_id: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    artifacts: list[Artifact] = []
    # Whether it reused an earlier identical job's result (submit(..., cache=True)), and
    # that job: the one its artifacts' labels name.
    cache_hit: bool = False
    cached_from: str | None = None

    @property
    def done(self) -> bool:
        return self.status in FINAL_JOB_STATUSES


class BatchCounts(_Model):
    total: int
    queued: int
    running: int
    succeeded: int
    failed: int
    canceled: int
    # Refused by moderation; 0 from a server that predates it.
    blocked: int = 0


class Batch(_Model):
    id: str
    status: str
    priority: str
    counts: BatchCounts
    metadata: dict[str, Any] = {}
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    oldest_queued_at: datetime | None = None
    cancel_requested_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.status in FINAL_BATCH_STATUSES


class ResultLine(_Model):
    """One line of a batch's results, in input order."""

    line: int
    custom_id: str | None = None
    job_id: str
    status: str
    error: JobError | None = None
    artifacts: list[Artifact] = []
