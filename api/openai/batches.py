"""OpenAI Batch API compatibility: an uploaded JSONL file of OpenAI requests becomes a batch
of native jobs, and the batch is served as OpenAI's Batch object with output and error files
in OpenAI's line format.

Each request line is translated to a native job and validated like any other; its response
options (image `response_format`, the model name as requested, ...) travel in the job's
metadata under `openai`, so the result files can be rendered in the shape asked for.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.orm import Session

from aigc.catalog import Catalog
from aigc.errors import ErrorCode, InvalidRequest, NotFound
from aigc.jsonl import decode_lines
from aigc.settings import Settings
from aigc.storage import ArtifactStore
from aigc.vocab import (
    DEFAULT_BATCH_PRIORITY,
    FINAL_BATCH_STATUSES,
    BatchApi,
    BatchStatus,
    JobStatus,
)
from api.auth import Caller
from api.batching import accept_batch
from api.downloads import is_expired
from api.errors import invalid_request
from api.openai.requests import (
    CHAT,
    COMPLETIONS,
    ENDPOINT_KINDS,
    IMAGES,
    METADATA_KEY,
    SPEECH,
    translate_lines,
)
from api.routes.files import save_file
from api.serialize import artifact_url
from db import batches as batch_queries
from db import files as file_queries
from db.tables import Batch, Job

PRIORITY = DEFAULT_BATCH_PRIORITY  # bulk work: interactive jobs go first, as for batches
COMPLETION_WINDOW = timedelta(hours=24)
SPOOL_BYTES = 8 * 1024 * 1024
RESULTS_PAGE = 500  # jobs read per query while writing the result files
# OpenAI's metadata limits.
MAX_METADATA_PAIRS, MAX_METADATA_KEY_CHARS, MAX_METADATA_VALUE_CHARS = 16, 64, 512

# Native status → OpenAI's. Requests are validated before the batch is stored, so an
# accepted batch is `in_progress` at once (OpenAI's `validating` is never seen).
STATUSES: dict[BatchStatus, str] = {
    BatchStatus.QUEUED: "in_progress",
    BatchStatus.RUNNING: "in_progress",
    BatchStatus.COMPLETED: "completed",
    BatchStatus.FAILED: "failed",
    BatchStatus.CANCELING: "cancelling",
    BatchStatus.CANCELED: "cancelled",
}
OPENAI_FINAL_STATUSES = tuple(STATUSES[status] for status in FINAL_BATCH_STATUSES)


class OpenAIBatchCreate(BaseModel):
    """OpenAI's create-batch body."""

    model_config = ConfigDict(extra="forbid")

    input_file_id: str = Field(min_length=1, max_length=64)
    endpoint: str
    completion_window: Literal["24h"]
    metadata: dict[str, str] | None = None

    @field_validator("endpoint")
    @classmethod
    def _supported_endpoint(cls, endpoint: str) -> str:
        if endpoint not in ENDPOINT_KINDS:
            raise PydanticCustomError(
                "endpoint", "must be one of: {supported}", {"supported": ", ".join(ENDPOINT_KINDS)}
            )
        return endpoint

    @field_validator("metadata")
    @classmethod
    def _openai_metadata_limits(cls, metadata: dict[str, str] | None) -> dict[str, str] | None:
        if metadata is None:
            return None
        if len(metadata) > MAX_METADATA_PAIRS:
            raise _metadata_error(f"at most {MAX_METADATA_PAIRS} key-value pairs")
        if any(len(key) > MAX_METADATA_KEY_CHARS for key in metadata):
            raise _metadata_error(f"keys are at most {MAX_METADATA_KEY_CHARS} characters")
        if any(len(value) > MAX_METADATA_VALUE_CHARS for value in metadata.values()):
            raise _metadata_error(f"values are at most {MAX_METADATA_VALUE_CHARS} characters")
        return metadata


def _metadata_error(message: str) -> PydanticCustomError:
    return PydanticCustomError("metadata", message)


# ---- Creating a batch ------------------------------------------------------------------


def create_openai_batch(
    request: Request,
    payload: dict[str, Any],
    session: Session,
    settings: Settings,
    catalog: Catalog,
    caller: Caller,
    before_commit: Callable[[Batch], None] | None = None,
) -> dict[str, Any]:
    """Validate the body and every request line of the input file, store the batch and its
    jobs, and return OpenAI's Batch object. Any bad line is a 422 listing every bad line."""
    create = _parse_create(payload)
    data = _input_file_bytes(session, request.app.state.store, create.input_file_id)
    jobs = translate_lines(
        decode_lines(data, max_line_bytes=settings.max_jsonl_line_bytes),
        create.endpoint,
        catalog,
        settings,
    )
    batch = accept_batch(
        session,
        jobs=jobs,
        priority=PRIORITY,
        metadata=create.metadata or {},
        caller=caller,
        api=BatchApi.OPENAI,
        endpoint=create.endpoint,
        completion_window=create.completion_window,
        input_file_id=create.input_file_id,
        before_commit=before_commit,
    )
    counts = batch_queries.BatchCounts.all_queued(batch)
    return openai_batch_object(batch, counts)


def _parse_create(payload: dict[str, Any]) -> OpenAIBatchCreate:
    try:
        return OpenAIBatchCreate.model_validate(payload)
    except ValidationError as exc:
        raise invalid_request(exc) from exc


def _input_file_bytes(session: Session, store: ArtifactStore, file_id: str) -> bytes:
    # Locked until the batch is stored: a concurrent DELETE /v1/files waits, then sees it used.
    file = file_queries.get_file(session, file_id, lock="share")
    if file is None:
        # Another team's file is not there either: the same 404, whether it exists or not.
        raise NotFound("file", file_id, field="input_file_id")
    if file.purpose != "batch":
        raise InvalidRequest.for_field(
            "input_file_id", f"file {file_id} has purpose {file.purpose!r}, not 'batch'"
        )
    if is_expired(file.expires_at) or not store.exists(file.storage_key):
        # Expired under the team's retention (its bytes are, or are about to be, swept).
        raise InvalidRequest.for_field(
            "input_file_id", f"the bytes of file {file_id} are no longer stored"
        )
    with store.open(file.storage_key) as f:
        return f.read()


# ---- The Batch object ------------------------------------------------------------------


def openai_batch_object(batch: Batch, counts: batch_queries.BatchCounts) -> dict[str, Any]:
    """OpenAI's Batch object, from the row and its job counts alone."""
    status = openai_status(batch, counts)
    done_at = _unix(counts.finished_at) if status in OPENAI_FINAL_STATUSES else None
    cancel_at = _unix(batch.cancel_requested_at) if status in ("cancelling", "cancelled") else None
    created_at = _unix(batch.created_at)
    return {
        "id": str(batch.id),
        "object": "batch",
        "endpoint": batch.endpoint,
        "errors": None,  # bad request lines are refused at creation with a 422
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": status,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "created_at": created_at,
        "in_progress_at": created_at,
        "expires_at": _unix(batch.created_at + COMPLETION_WINDOW),
        "finalizing_at": done_at,
        "completed_at": done_at if status == "completed" else None,
        "failed_at": done_at if status == "failed" else None,
        "expired_at": None,
        "cancelling_at": cancel_at,
        "cancelled_at": done_at if status == "cancelled" else None,
        "request_counts": {
            "total": counts.total,
            "completed": counts[JobStatus.SUCCEEDED],
            # Cancelled requests are in the error file, so they count as failed.
            "failed": counts[JobStatus.FAILED]
            + counts[JobStatus.CANCELED]
            + counts[JobStatus.BLOCKED],
        },
        "metadata": batch.meta,
    }


def openai_status(batch: Batch, counts: batch_queries.BatchCounts) -> str:
    native = batch_queries.batch_status(batch, counts)
    if native == BatchStatus.CANCELED and counts[JobStatus.CANCELED] == 0:
        # The cancel came after every request had finished: nothing was cancelled.
        nothing_succeeded = counts[JobStatus.SUCCEEDED] == 0 and (
            counts[JobStatus.FAILED] + counts[JobStatus.BLOCKED]
        )
        native = BatchStatus.FAILED if nothing_succeeded else BatchStatus.COMPLETED
    return STATUSES[native]


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


# ---- Output and error files ------------------------------------------------------------


def write_result_files_once(
    request: Request, session: Session, batch: Batch, counts: batch_queries.BatchCounts
) -> None:
    """Once the batch has finished: write the output file (succeeded requests) and, where
    any request failed or was cancelled, the error file, both in input order, and commit
    their ids on the batch. Whoever asks first writes them; the others find the ids set."""
    if (
        batch.output_file_id is not None
        or openai_status(batch, counts) not in OPENAI_FINAL_STATUSES
    ):
        return
    output_id = file_queries.new_file_id()
    if file_queries.claim_batch_output(session, batch.id, output_id):
        renderer = _Renderer(request, batch.endpoint or CHAT)
        store = request.app.state.store
        # Spilled to disk past a few MiB: 50,000 result lines never sit in memory at once.
        with (
            tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as output,
            tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as errors,
        ):
            for job in _finished_jobs(session, batch):
                line, ok = renderer.line(job)
                (output if ok else errors).write(json.dumps(line).encode() + b"\n")
            save_file(
                session,
                store,
                file_id=output_id,
                purpose="batch_output",
                filename=f"batch_{batch.id}_output.jsonl",
                data=output,  # type: ignore[arg-type]
                team_id=batch.team_id,
                retention_s=request.app.state.settings.file_retention_s,
            )
            if errors.tell():
                error_id = file_queries.new_file_id()
                save_file(
                    session,
                    store,
                    file_id=error_id,
                    purpose="batch_output",
                    filename=f"batch_{batch.id}_error.jsonl",
                    data=errors,  # type: ignore[arg-type]
                    team_id=batch.team_id,
                    retention_s=request.app.state.settings.file_retention_s,
                )
                file_queries.set_batch_error_file(session, batch.id, error_id)
        session.commit()
    # Either way the row now holds the ids: ours, or those of whoever wrote them first.
    session.refresh(batch)


def _finished_jobs(session: Session, batch: Batch) -> Iterator[Job]:
    # Page by page, so 50,000 jobs and their artifacts are never loaded at once.
    after_line = -1
    while jobs := batch_queries.batch_jobs(
        session, batch.id, limit=RESULTS_PAGE, after_line=after_line, with_artifacts=True
    ):
        yield from jobs
        after_line = jobs[-1].line or 0


class _Renderer:
    """Result lines in OpenAI's batch output format, with bodies shaped like the endpoint's
    own responses. Artifact URLs are the stable, key-authenticated ones: the files are
    stored and outlive any signed URL's expiry."""

    def __init__(self, request: Request, endpoint: str) -> None:
        self.request = request
        self.settings: Settings = request.app.state.settings
        self.store: ArtifactStore = request.app.state.store
        self.body: Callable[[Job], dict[str, Any]] = {
            CHAT: self._chat_completion,
            COMPLETIONS: self._text_completion,
            IMAGES: self._images,
            SPEECH: self._speech,
        }[endpoint]

    def line(self, job: Job) -> tuple[dict[str, Any], bool]:
        """The job's result line, and whether it goes to the output file (else errors)."""
        line: dict[str, Any] = {"id": f"batch_req_{job.id.hex}", "custom_id": job.custom_id}
        if job.status == JobStatus.SUCCEEDED:
            try:
                body = self.body(job)
            except FileNotFoundError:
                # Its bytes expired under the team's retention before this file was written.
                gone = {
                    "code": ErrorCode.GONE,
                    "message": "the output expired under its team's retention and was deleted",
                }
                return {**line, "response": None, "error": gone}, False
            response = {"status_code": 200, "request_id": str(job.id), "body": body}
            return {**line, "response": response, "error": None}, True
        if job.status in (JobStatus.FAILED, JobStatus.BLOCKED):
            return {**line, **_failure(job)}, False
        error = {"code": "batch_cancelled", "message": "the batch was cancelled before it ran"}
        return {**line, "response": None, "error": error}, False

    def _options(self, job: Job) -> dict[str, Any]:
        return job.meta.get(METADATA_KEY) or {}

    def _read(self, storage_key: str) -> bytes:
        with self.store.open(storage_key) as f:
            return f.read()

    def _text_choice(self, job: Job) -> tuple[str, str, dict[str, Any]]:
        """The generated text, its finish reason and usage."""
        [artifact] = job.artifacts
        tokens = artifact.tokens or 0
        finish_reason = "length" if tokens >= job.params.get("max_new_tokens", 0) else "stop"
        # The API does not tokenize prompts: only completion tokens are known.
        usage = {"prompt_tokens": None, "completion_tokens": tokens, "total_tokens": None}
        return self._read(artifact.storage_key).decode("utf-8"), finish_reason, usage

    def _chat_completion(self, job: Job) -> dict[str, Any]:
        text, finish_reason, usage = self._text_choice(job)
        message = {"role": "assistant", "content": text, "refusal": None}
        return {
            "id": f"chatcmpl-{job.id.hex}",
            "object": "chat.completion",
            "created": _unix(job.finished_at),
            "model": job.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
            ],
            "usage": usage,
        }

    def _text_completion(self, job: Job) -> dict[str, Any]:
        text, finish_reason, usage = self._text_choice(job)
        return {
            "id": f"cmpl-{job.id.hex}",
            "object": "text_completion",
            "created": _unix(job.finished_at),
            "model": job.model,
            "choices": [
                {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
            ],
            "usage": usage,
        }

    def _images(self, job: Job) -> dict[str, Any]:
        inline = self._options(job).get("response_format") == "b64_json"
        data = [
            {"b64_json": _b64(self._read(artifact.storage_key))}
            if inline
            else {"url": artifact_url(self.request, self.settings, artifact, signed=False)}
            for artifact in job.artifacts
        ]
        return {"created": _unix(job.finished_at), "data": data}

    def _speech(self, job: Job) -> dict[str, Any]:
        [artifact] = job.artifacts
        body: dict[str, Any] = {
            "object": "audio.speech",
            "created": _unix(job.finished_at),
            "model": job.model,
            "url": artifact_url(self.request, self.settings, artifact, signed=False),
            "mime_type": artifact.mime_type,
            "bytes": artifact.size_bytes,
            "duration_s": artifact.duration_s,
            "sample_rate": artifact.sample_rate,
        }
        if self._options(job).get("include_b64_json"):
            body["b64_json"] = _b64(self._read(artifact.storage_key))
        return body


def _failure(job: Job) -> dict[str, Any]:
    """A failed request: an HTTP-like error response (400 where the model rejected the input,
    500 otherwise) and the error's type and message."""
    code = job.error_code or "internal_error"
    message = job.error_message or ""
    # The request's own content was at fault: refused input, or refused by moderation.
    client_error = code in (ErrorCode.INVALID_INPUT, ErrorCode.CONTENT_BLOCKED)
    response = {
        "status_code": 400 if client_error else 500,
        "request_id": str(job.id),
        "body": {
            "error": {
                "message": message,
                "type": "invalid_request_error" if client_error else "server_error",
                "param": None,
                "code": code,
            }
        },
    }
    return {"response": response, "error": {"code": code, "message": message}}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
