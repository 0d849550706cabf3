"""Batches: submit thousands of jobs at once, follow them, cancel or retry them, collect
the results. Native batches and OpenAI Batch API batches share these routes: a create
request with `input_file_id` is OpenAI's shape, and each batch is served in the shape it
was created in."""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aigc import strict_json
from aigc.catalog import Catalog
from aigc.errors import InvalidRequest, NotFound
from aigc.ids import uuid7
from aigc.jsonl import decode_lines
from aigc.settings import Settings
from aigc.ssrf import MAX_URL_CHARS
from aigc.storage import ArtifactStore
from aigc.vocab import (
    DEFAULT_BATCH_PRIORITY,
    FINAL_BATCH_STATUSES,
    BatchApi,
    JobStatus,
    Kind,
    Priority,
)
from aigc.webhooks.events import EventFilter
from api import quotas
from api.auth import Caller, CallerDep, authenticate
from api.batching import ValidLines, accept_batch
from api.deps import (
    BrokerClientDep,
    CatalogDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from api.downloads import (
    NOSNIFF,
    check_not_expired,
    is_expired,
    presigned_ttl,
    stored_response,
)
from api.errors import invalid_request
from api.idempotency import (
    IdempotencyKeyHeader,
    IdempotentRequest,
    fingerprint,
    remember,
    replay_if_seen,
)
from api.results_csv import RESULTS_CSV_FIELDS, results_csv_chunks
from api.routes.webhooks import valid_webhook_url
from api.schemas import (
    BatchCounts,
    BatchCreate,
    BatchEventFilter,
    BatchList,
    BatchObject,
    BatchPublic,
    JobList,
)
from api.serialize import job_public
from api.validation import parse_batch_job
from db import audit
from db import batches as batch_queries
from db import jobs as job_queries
from db import retention as retention_queries
from db.scope import scoped_like
from db.tables import Batch, Job

router = APIRouter(prefix="/v1/batches", tags=["batches"], dependencies=[Depends(authenticate)])

JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines", "text/jsonl")
MAX_PAGE_SIZE = 1000
MAX_LINE = 2**31 - 1  # jobs.line is a 32-bit integer: a larger cursor is a 422, not a 500
RESULTS_PAGE = 500  # jobs read per query while writing or streaming results
RESULTS_MEDIA_TYPE = "application/x-ndjson"
RESULTS_CSV_MEDIA_TYPE = "text/csv"  # Starlette adds `; charset=utf-8`

JSONL_EXAMPLE = (
    '{"custom_id": "a", "kind": "text", "prompt": "Hello"}\n'
    '{"custom_id": "b", "kind": "image", "prompt": "a red kite", "params": {"steps": 2}}\n'
)
RESULTS_EXAMPLE = (
    '{"line": 1, "custom_id": "a", "job_id": "0190f0a1-b2c3-7d4e-8f90-a1b2c3d4e5f6", '
    '"status": "succeeded", "error": null, "artifacts": [{"id": '
    '"0190f0a1-b2c3-7d4e-8f90-a1b2c3d4e5f7", "index": 0, "mime_type": "text/plain", '
    '"bytes": 5, "sha256": "185f8db32271fe25f561a6fc938b2e264306ec304eda518007d1764826381969", '
    '"url": "http://localhost:8000/v1/artifacts/0190f0a1-b2c3-7d4e-8f90-a1b2c3d4e5f7/content", '
    '"characters": 5, "tokens": 1, "text": "Hello"}]}\n'
)
RESULTS_CSV_EXAMPLE = (
    ",".join(RESULTS_CSV_FIELDS) + "\r\n"
    "1,a,0190f0a1-b2c3-7d4e-8f90-a1b2c3d4e5f6,succeeded,0,"
    "http://localhost:8000/v1/artifacts/0190f0a1-b2c3-7d4e-8f90-a1b2c3d4e5f7/content,text/plain,"
    "185f8db32271fe25f561a6fc938b2e264306ec304eda518007d1764826381969,Hello,,\r\n"
    "2,b,0190f0a1-b2c3-7d4e-8f90-a1b2c3d4e5f8,failed,,,,,,invalid_input,'=1+1 is not a prompt\r\n"
)


class ResultsFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


# The three bodies create_batch reads itself (the content type decides), as OpenAPI sees them.
CREATE_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/BatchCreate"},
                        {"$ref": "#/components/schemas/OpenAIBatchCreate"},
                    ]
                },
                "examples": {
                    "native": {
                        "summary": "A native batch",
                        "value": {
                            "jobs": [
                                {"custom_id": "a", "kind": "text", "prompt": "Hello"},
                                {"custom_id": "b", "kind": "audio", "prompt": "Good morning"},
                            ],
                            "priority": "low",
                        },
                    },
                    "openai": {
                        "summary": "OpenAI's body: an uploaded JSONL file of requests",
                        "value": {
                            "input_file_id": "file-0190f0a1b2c37d4e8f90a1b2c3d4e5f6",
                            "endpoint": "/v1/chat/completions",
                            "completion_window": "24h",
                        },
                    },
                },
            },
            "application/x-ndjson": {
                "schema": {
                    "type": "string",
                    "description": (
                        "One job (a JobCreate with a `custom_id`) per line; `priority` as a "
                        "query parameter."
                    ),
                },
                "example": JSONL_EXAMPLE,
            },
        },
    }
}
BATCH_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"model": BatchObject, "description": "The batch, in the shape it was created in"}
}


@dataclass(frozen=True)
class UploadWebhook:
    """A JSONL upload's webhook, given as query parameters (a JSON body has its own)."""

    url: str | None
    events: list[BatchEventFilter] | None

    def events_filter(self, webhook: str | None) -> list[str] | None:
        if webhook is None:
            return None
        return list(dict.fromkeys(self.events or [EventFilter.COMPLETED.value]))


def batch_public(batch: Batch, counts: batch_queries.BatchCounts) -> BatchPublic:
    return BatchPublic(
        id=batch.id,
        status=batch_queries.batch_status(batch, counts),
        priority=batch.priority,
        counts=BatchCounts(total=counts.total, **{s: counts[s] for s in JobStatus}),
        metadata=batch.meta,
        created_at=batch.created_at,
        started_at=counts.started_at,
        finished_at=counts.finished_at,
        oldest_queued_at=counts.oldest_queued_at,
        cancel_requested_at=batch.cancel_requested_at,
        webhook=batch.webhook,
        webhook_events_filter=batch.webhook_events_filter,
    )


def render_batch(
    request: Request, session: Any, batch: Batch, counts: batch_queries.BatchCounts
) -> dict[str, Any]:
    """The batch in the shape of the API that created it. A finished OpenAI-style batch
    gets its result files first (their ids are part of its object)."""
    if batch.api == BatchApi.OPENAI:
        from api.openai.batches import openai_batch_object, write_result_files_once

        write_result_files_once(request, session, batch, counts)
        return openai_batch_object(batch, counts)
    return batch_public(batch, counts).model_dump(mode="json")


def _load_batch(session: Any, batch_id: uuid.UUID) -> tuple[Batch, batch_queries.BatchCounts]:
    batch = batch_queries.get_batch(session, batch_id)
    if batch is None:
        raise NotFound("batch", batch_id)
    return batch, batch_queries.batch_counts(session, [batch])[batch.id]


@router.post(
    "",
    name="create_batch",
    status_code=202,
    openapi_extra=CREATE_BODY_DOC,
    response_model=None,
    responses={
        202: {"model": BatchObject, "description": "Accepted: every job is stored, queued"},
        413: {"description": "The body is larger than the batch size limit"},
        **quotas.TOO_MANY_REQUESTS,
    },
)
async def create_batch(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    catalog: CatalogDep,
    caller: CallerDep,
    broker: BrokerClientDep,
    priority: Annotated[
        Priority, Query(description="For a JSONL upload.")
    ] = DEFAULT_BATCH_PRIORITY,
    webhook: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_URL_CHARS,
            description="For a JSONL upload: the batch's webhook (a JSON body says it itself).",
        ),
    ] = None,
    webhook_events_filter: Annotated[
        list[BatchEventFilter] | None,
        Query(description="For a JSONL upload: which events go to `webhook` (repeatable)."),
    ] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any] | JSONResponse:
    """Submit a batch: JSON `{"jobs": [...]}`, a JSONL upload (one job per line with a
    `custom_id`), or OpenAI's `{"input_file_id", "endpoint", "completion_window"}`. Every line
    is validated first: one bad line is a 422 listing each bad line, and nothing is stored."""
    # Bounded as it arrives by api.limits.BodySizeLimit (413).
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    idempotent = (
        IdempotentRequest(
            caller.team_id,
            idempotency_key,
            "POST /v1/batches",
            fingerprint(
                body, content_type, priority, webhook or "", ",".join(webhook_events_filter or ())
            ),
        )
        if idempotency_key
        else None
    )
    if idempotent:
        replay = await run_in_threadpool(
            replay_if_seen, session, idempotent, settings.idempotency_ttl_s
        )
        if replay is not None:
            return replay
    await run_in_threadpool(quotas.check_rate, broker, caller)

    def remember_response(batch: Batch) -> None:
        if idempotent is None:
            return
        counts = batch_queries.BatchCounts.all_queued(batch)
        remember(
            session,
            idempotent,
            status_code=202,
            body=render_batch(request, session, batch, counts),
            headers={"Location": f"/v1/batches/{batch.id}"},
        )

    upload_webhook = UploadWebhook(webhook, webhook_events_filter)
    try:
        created = await run_in_threadpool(
            _create, request, body, content_type, priority, session, settings, catalog, caller,
            remember_response, upload_webhook,
        )  # fmt: skip
    except IntegrityError:
        # A concurrent request with the same key won: answer what it answered.
        session.rollback()
        replay = (
            await run_in_threadpool(replay_if_seen, session, idempotent, settings.idempotency_ttl_s)
            if idempotent
            else None
        )
        if replay is None:
            raise
        return replay
    response.headers["Location"] = f"/v1/batches/{created['id']}"
    return created


def _create(
    request: Request,
    body: bytes,
    content_type: str,
    priority: Priority,
    session: Session,
    settings: Settings,
    catalog: Catalog,
    caller: Caller,
    before_commit: Callable[[Batch], None],
    upload_webhook: UploadWebhook,
) -> dict[str, Any]:
    """Hand the body to the API it speaks: a JSONL upload or a JSON `{"jobs"}` body is a
    native batch; a JSON body with `input_file_id` is OpenAI's create-batch request."""
    if content_type in JSONL_TYPES:
        webhook = valid_webhook_url(upload_webhook.url, settings)
        lines = decode_lines(body, max_line_bytes=settings.max_jsonl_line_bytes)
        return submit_native_batch(
            request, session, settings, catalog, lines, require_custom_id=True,
            priority=priority, metadata={}, caller=caller, before_commit=before_commit,
            webhook=webhook, webhook_events_filter=upload_webhook.events_filter(webhook),
        )  # fmt: skip
    if upload_webhook.url is not None or upload_webhook.events is not None:
        field = "webhook" if upload_webhook.url is not None else "webhook_events_filter"
        raise InvalidRequest.for_field(field, "as a query parameter only with a JSONL upload")
    payload = strict_json.loads(body)
    if is_openai_batch_request(payload):
        from api.openai.batches import create_openai_batch

        return create_openai_batch(
            request, payload, session, settings, catalog, caller, before_commit
        )
    try:
        create = BatchCreate.model_validate(payload)
    except ValidationError as exc:
        raise invalid_request(exc) from exc
    webhook = valid_webhook_url(create.webhook, settings)
    return submit_native_batch(
        request, session, settings, catalog, list(enumerate(create.jobs, start=1)),
        require_custom_id=False, priority=create.priority, metadata=create.metadata or {},
        caller=caller, before_commit=before_commit, webhook=webhook,
        webhook_events_filter=(
            list(dict.fromkeys(create.webhook_events_filter)) if webhook else None
        ),
    )  # fmt: skip


def is_openai_batch_request(payload: Any) -> bool:
    """OpenAI's create-batch body names an uploaded input file; a native one lists jobs."""
    return isinstance(payload, dict) and "input_file_id" in payload


def submit_native_batch(
    request: Request,
    session: Session,
    settings: Settings,
    catalog: Catalog,
    lines: Sequence[tuple[int, Any]],
    *,
    require_custom_id: bool,
    priority: Priority,
    metadata: dict[str, Any],
    caller: Caller,
    before_commit: Callable[[Batch], None],
    webhook: str | None = None,
    webhook_events_filter: list[str] | None = None,
) -> dict[str, Any]:
    """Validate every (line number, job) of a native batch as it is stored; returns
    the new batch's public object."""
    jobs = ValidLines(
        lines,
        lambda raw: parse_batch_job(raw, catalog, settings),
        settings,
        require_custom_id=require_custom_id,
    )
    batch = accept_batch(
        session, jobs=jobs, priority=priority, metadata=metadata,
        caller=caller, before_commit=before_commit,
        webhook=webhook, webhook_events_filter=webhook_events_filter,
    )  # fmt: skip
    counts = batch_queries.BatchCounts.all_queued(batch)
    return batch_public(batch, counts).model_dump(mode="json")


@router.get("", name="list_batches", response_model=BatchList)
def list_batches(
    request: Request,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[
        uuid.UUID | None, Query(description="The last id of the previous page.")
    ] = None,
) -> BatchList:
    """Batches, newest first (OpenAI's list shape: `after`, `limit`, `has_more`)."""
    batches = batch_queries.list_batches(session, limit=limit + 1, before=after)
    page, has_more = list(batches[:limit]), len(batches) > limit
    counts = batch_queries.batch_counts(session, page)
    data = [render_batch(request, session, batch, counts[batch.id]) for batch in page]
    return BatchList(
        data=data,
        first_id=str(page[0].id) if page else None,
        last_id=str(page[-1].id) if page else None,
        has_more=has_more,
    )


@router.get("/{batch_id}", name="get_batch", response_model=None, responses=BATCH_RESPONSE)
def get_batch(batch_id: uuid.UUID, request: Request, session: SessionDep) -> dict[str, Any]:
    """A batch with its status and job counts."""
    batch, counts = _load_batch(session, batch_id)
    return render_batch(request, session, batch, counts)


@router.post(
    "/{batch_id}/cancel", name="cancel_batch", response_model=None, responses=BATCH_RESPONSE
)
def cancel_batch(batch_id: uuid.UUID, request: Request, session: SessionDep) -> dict[str, Any]:
    """Cancel a batch: queued jobs never run; running ones stop at their next step."""
    batch = batch_queries.get_batch(session, batch_id)
    if batch is None:
        raise NotFound("batch", batch_id)
    batch_queries.cancel_batch(session, batch_id)
    session.commit()
    batch, counts = _load_batch(session, batch_id)
    return render_batch(request, session, batch, counts)


@router.post(
    "/{batch_id}/retry",
    name="retry_batch",
    response_model=None,
    responses={**BATCH_RESPONSE, **quotas.TOO_MANY_REQUESTS},
)
def retry_batch(
    batch_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    caller: CallerDep,
    include_canceled: bool = False,
) -> dict[str, Any]:
    """Re-queue the batch's failed jobs (and canceled ones with `include_canceled=true`);
    succeeded jobs and their artifacts are kept. A team at its max_queued gets a 429 and
    nothing changes."""
    batch = batch_queries.get_batch(session, batch_id)
    if batch is None:
        raise NotFound("batch", batch_id)
    statuses = (JobStatus.FAILED, JobStatus.CANCELED) if include_canceled else (JobStatus.FAILED,)
    if include_canceled:
        batch.cancel_requested_at = None  # the batch is live again
    # OpenAI's result files and the stored results describe the batch as it was: they are
    # rendered anew at its end.
    batch.output_file_id = batch.error_file_id = None
    requeued = job_queries.requeue_jobs(session, statuses=statuses, batch_id=batch_id)
    if requeued:
        quotas.check_requeue(session, caller)
    stale_results = (
        batch_queries.clear_batch_results(session, batch_id=batch_id) if requeued else None
    )
    session.commit()
    if stale_results is not None:
        store.delete(stale_results)
    batch, counts = _load_batch(session, batch_id)
    return render_batch(request, session, batch, counts)


@router.get("/{batch_id}/jobs", name="list_batch_jobs", response_model=JobList)
def list_batch_jobs(
    batch_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    cursor: Annotated[
        int | None, Query(ge=0, le=MAX_LINE, description="next_cursor of the previous page")
    ] = None,
) -> JobList:
    """The batch's jobs in input order, optionally only those in one status."""
    if batch_queries.get_batch(session, batch_id) is None:
        raise NotFound("batch", batch_id)
    jobs = batch_queries.batch_jobs(
        session, batch_id, limit=limit, after_line=-1 if cursor is None else cursor, status=status
    )
    next_cursor = str(jobs[-1].line) if len(jobs) == limit else None
    return JobList(
        data=[job_public(request, settings, job) for job in jobs], next_cursor=next_cursor
    )


def batch_with_results(session: Session, batch_id: uuid.UUID) -> Batch:
    """The batch whose results are asked for: 404 when it is not the caller's, 410 once
    its results expired under the team's retention."""
    batch = batch_queries.get_batch(session, batch_id)
    if batch is None:
        raise NotFound("batch", batch_id)
    check_not_expired("the results of batch", batch_id, batch.expires_at)
    return batch


@router.get(
    "/{batch_id}/results",
    name="get_batch_results",
    response_class=Response,
    responses={
        200: {
            "description": (
                "JSONL: one ResultLine per line, in input order. A finished batch's results "
                "are stored once and then served with a strong ETag and byte ranges; an "
                "unfinished batch's are streamed as they stand, with no ETag."
            ),
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": "One ResultLine per line"},
                    "example": RESULTS_EXAMPLE,
                },
                "text/csv": {
                    "schema": {
                        "type": "string",
                        "description": (
                            "`format=csv`: UTF-8 with a byte order mark, one row per artifact "
                            "(one per job without any), columns "
                            + ", ".join(RESULTS_CSV_FIELDS)
                            + ". A cell that would start a formula (=, +, -, @, tab, CR) "
                            "starts with `'`. Always streamed: no ETag or ranges."
                        ),
                    },
                    "example": RESULTS_CSV_EXAMPLE,
                },
            },
        },
        206: {"description": "The range asked for (finished batches, JSONL)"},
        304: {"description": "Not modified: the ETag matches If-None-Match (JSONL)"},
        307: {
            "description": "S3 store: a presigned URL of the stored results, in Location (JSONL)"
        },
        410: {"description": "The stored results expired under the team's retention"},
        416: {"description": "The range starts past the end"},
    },
)
def batch_results(
    batch_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
    store: StoreDep,
    format: Annotated[
        ResultsFormat,
        Query(description="`jsonl` (the stored form), or `csv` for spreadsheets (streamed)."),
    ] = ResultsFormat.JSONL,
) -> Response:
    """JSONL, one line per job in input order: custom_id, job id, status, error, and each
    artifact's url, mime type, sha256 and facts (text output inline). With `format=csv`, the
    same as CSV: one row per artifact, text output inline."""
    batch = batch_with_results(session, batch_id)
    audit.record(
        session,
        audit.key_actor(caller),
        audit.AuditAction.RESULTS_DOWNLOADED,
        target_type="batch",
        target_id=batch_id,
        team_id=batch.team_id,
        details={"format": str(format)},
    )
    session.commit()
    if format == ResultsFormat.CSV:
        return _csv_results(request, session, settings, store, batch_id)
    filename = f"batch-{batch_id}-results.jsonl"
    if not (batch.results_sha256 and batch.results_key and store.exists(batch.results_key)):
        stored = batch_finished(session, batch) and _store_results(
            session, request, settings, store, batch
        )
        if not stored:
            factory = request.app.state.session_factory
            # Each page's session is scoped as this request's is: it reads only the
            # caller's rows.
            return StreamingResponse(
                result_chunks(
                    lambda: scoped_like(factory(), session), request, settings, store, batch_id
                ),
                media_type=RESULTS_MEDIA_TYPE,
                headers={**NOSNIFF, "Content-Disposition": f'attachment; filename="{filename}"'},
            )
    assert batch.results_key is not None  # stored above, by this request or another
    return stored_response(
        request,
        store,
        batch.results_key,
        media_type=RESULTS_MEDIA_TYPE,
        filename=filename,
        sha256=batch.results_sha256,
        url_ttl_s=presigned_ttl(settings.url_ttl_s, batch.expires_at),
    )


def _csv_results(
    request: Request,
    session: Session,
    settings: Settings,
    store: ArtifactStore,
    batch_id: uuid.UUID,
) -> StreamingResponse:
    """The results as CSV, streamed from the jobs: the JSONL alone is stored (it has the
    ETag), and the CSV is a view of the same lines."""
    factory = request.app.state.session_factory
    # Each page's session is scoped as this request's is: it reads only the caller's rows.
    pages = result_pages(
        lambda: scoped_like(factory(), session), request, settings, store, batch_id
    )
    filename = f"batch-{batch_id}-results.csv"
    return StreamingResponse(
        results_csv_chunks(pages),
        media_type=RESULTS_CSV_MEDIA_TYPE,
        headers={**NOSNIFF, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


def batch_finished(session: Session, batch: Batch) -> bool:
    counts = batch_queries.batch_counts(session, [batch])[batch.id]
    return batch_queries.batch_status(batch, counts) in FINAL_BATCH_STATUSES


def _store_results(
    session: Session, request: Request, settings: Settings, store: ArtifactStore, batch: Batch
) -> bool:
    """Write the finished batch's results to the store once, whoever asks first, and
    refresh `batch` to show them; False if the batch turned out to be running again (a
    retry came first). Concurrent first requests wait on the claim (a row lock) and then
    serve what the winner wrote."""
    stale = batch.results_key
    # A new key each time: a download in flight keeps reading the object it started on.
    key = f"batches/{batch.id}/results-{uuid7().hex}.jsonl"
    claimed = batch_queries.claim_batch_results(
        session, batch_id=batch.id, key=key, stale_key=stale
    )
    # Checked again under the lock: a retry that committed since is seen now, and one that
    # has not yet cleared the results waits for this transaction and then clears them.
    if claimed and not batch_finished(session, batch):
        session.rollback()
        return False
    if claimed:
        digest, size = hashlib.sha256(), 0
        # On disk, not in memory: a 50,000-job batch's results are tens of MB.
        with tempfile.TemporaryFile() as spool:
            chunks = result_chunks(lambda: nullcontext(session), request, settings, store, batch.id)
            for chunk in chunks:
                spool.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            spool.seek(0)
            store.put(key, spool)
        batch_queries.record_batch_results(
            session, batch_id=batch.id, size_bytes=size, sha256=digest.hexdigest()
        )
        retention_queries.batch_results_expiry(
            session, batch_id=batch.id, default_s=settings.artifact_retention_s
        )
        session.commit()
        if stale is not None:
            store.delete(stale)
    else:
        session.rollback()
    session.refresh(batch)
    return batch.results_key is not None


def result_pages(
    sessions: Callable[[], AbstractContextManager[Session]],
    request: Request,
    settings: Settings,
    store: ArtifactStore,
    batch_id: uuid.UUID,
) -> Iterator[list[dict[str, Any]]]:
    """The result lines, a page of jobs at a time, each page read in a session from
    `sessions` (a new one per page while streaming: the request's session closes when the
    route returns)."""
    after_line = -1
    while True:
        with sessions() as session:
            jobs = batch_queries.batch_jobs(
                session, batch_id, limit=RESULTS_PAGE, after_line=after_line, with_artifacts=True
            )
            lines = [result_line(request, settings, store, job) for job in jobs]
            for job in jobs:
                # A session shared across pages must not keep 50,000 jobs in memory.
                session.expunge(job)
        if not jobs:
            return
        yield lines
        after_line = jobs[-1].line or 0


def result_chunks(
    sessions: Callable[[], AbstractContextManager[Session]],
    request: Request,
    settings: Settings,
    store: ArtifactStore,
    batch_id: uuid.UUID,
) -> Iterator[bytes]:
    """The results JSONL, a page of jobs at a time (as result_pages reads them)."""
    for lines in result_pages(sessions, request, settings, store, batch_id):
        yield "".join(json.dumps(line) + "\n" for line in lines).encode()


def result_line(
    request: Request, settings: Settings, store: ArtifactStore, job: Job
) -> dict[str, Any]:
    """One ResultLine (api.schemas), as a dict: 50,000 of them are built per download.
    Its artifact URLs are the stable, key-authenticated ones: stored results outlive any
    signed URL's expiry, and streamed ones read the same."""
    public = job_public(request, settings, job, signed_urls=False)
    artifacts = []
    for artifact, row in zip(public.artifacts, job.artifacts, strict=True):
        entry = artifact.model_dump(mode="json")
        # An expired artifact's text is deleted (or about to be): its entry says when.
        if job.kind == Kind.TEXT and not is_expired(row.expires_at):
            with store.open(row.storage_key) as f:
                entry["text"] = f.read().decode("utf-8")
        artifacts.append(entry)
    return {
        "line": (job.line or 0) + 1,
        "custom_id": job.custom_id,
        "job_id": str(job.id),
        "status": job.status,
        "error": public.error.model_dump() if public.error else None,
        "artifacts": artifacts,
    }
