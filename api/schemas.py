"""Request and response bodies, in families per resource."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from aigc.vocab import (
    DEFAULT_BATCH_PRIORITY,
    DEFAULT_JOB_PRIORITY,
    BatchApi,
    BatchStatus,
    JobStatus,
    Kind,
    Priority,
)
from db.tables import ARTIFACT_FACTS


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    prompt: str = Field(min_length=1)
    model: str | None = Field(None, min_length=1, max_length=256)
    params: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    priority: Priority = DEFAULT_JOB_PRIORITY


class BatchJobCreate(JobCreate):
    """A job as one element of a native batch; `custom_id` is the client's id for it."""

    custom_id: str | None = Field(None, min_length=1, max_length=256)


class JobError(BaseModel):
    code: str = Field(description="A stable error code: timeout, worker_lost, invalid_input, ...")
    message: str


class JobProgress(BaseModel):
    """How far a running job has got, stored by its worker a few times a second: generated
    tokens (text), denoising steps (image) or finished requests (audio) of its chunk, which
    runs as one batch. A canceled job keeps the step it stopped at."""

    done: int = Field(ge=0)
    total: int = Field(ge=0)


class ArtifactPublic(BaseModel):
    id: uuid.UUID
    index: int
    mime_type: str
    bytes: int
    sha256: str
    url: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    sample_rate: int | None = None
    characters: int | None = None
    tokens: int | None = None

    @model_serializer(mode="wrap")
    def _omit_facts_of_other_kinds(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if not (k in ARTIFACT_FACTS and v is None)}


class JobPublic(BaseModel):
    id: uuid.UUID
    object: Literal["job"] = "job"
    kind: Kind
    model: str
    prompt: str
    params: dict[str, Any]
    status: JobStatus
    priority: Priority
    error: JobError | None
    # Null until its worker first reports; cleared when the job goes back to the queue.
    progress: JobProgress | None = None
    attempts: int
    worker: str | None
    metadata: dict[str, Any]
    batch_id: uuid.UUID | None = None
    custom_id: str | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    artifacts: list[ArtifactPublic]


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobPublic]
    # Pass as `cursor` to get the next (older) page; null on the last page.
    next_cursor: str | None


class BatchCreate(BaseModel):
    """A native batch as JSON. (A JSONL upload carries the same jobs one per line.)"""

    model_config = ConfigDict(extra="forbid")

    jobs: list[dict[str, Any]] = Field(min_length=1)
    metadata: dict[str, Any] | None = None
    priority: Priority = DEFAULT_BATCH_PRIORITY


class BatchCounts(BaseModel):
    total: int
    queued: int
    running: int
    succeeded: int
    failed: int
    canceled: int


class BatchPublic(BaseModel):
    id: uuid.UUID
    object: Literal["batch"] = "batch"
    api: Literal[BatchApi.NATIVE] = BatchApi.NATIVE
    status: BatchStatus
    priority: Priority
    counts: BatchCounts
    metadata: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None


class BatchList(BaseModel):
    """OpenAI's list shape, for both native and OpenAI-style batches."""

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


class ModelPublic(BaseModel):
    name: str
    kind: Kind
    default: bool
    description: str
    params_schema: dict[str, Any]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelPublic]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}
