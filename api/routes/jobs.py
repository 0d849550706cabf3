"""Single jobs: submit, read, list, cancel."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aigc.errors import Conflict, InvalidRequest, NotFound
from aigc.settings import Settings
from aigc.vocab import JobStatus, Kind
from api import quotas
from api.auth import CallerDep, authenticate
from api.deps import (
    BrokerClientDep,
    CatalogDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from api.idempotency import (
    IdempotencyKeyHeader,
    IdempotentRequest,
    fingerprint,
    remember,
    replay_if_seen,
)
from api.routes.webhooks import valid_webhook_url
from api.schemas import JobCreate, JobList, JobPublic
from api.serialize import job_public
from api.validation import StrictJsonRoute, validate_job
from db import audit
from db import batches as batch_queries
from db import jobs as job_queries
from db.result_cache import cache_key, find_source, record_hit
from db.tables import Team

router = APIRouter(
    prefix="/v1/jobs",
    tags=["jobs"],
    route_class=StrictJsonRoute,
    dependencies=[Depends(authenticate)],
)

MAX_PAGE_SIZE = 100


@router.post("", status_code=202, response_model=JobPublic, responses=quotas.TOO_MANY_REQUESTS)
def submit_job(
    body: JobCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    catalog: CatalogDep,
    caller: CallerDep,
    broker: BrokerClientDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JobPublic | JSONResponse:
    """Submit a generation job; it is stored as `queued` before this answers. With `cache`
    and an identical earlier job of the team, it is stored `succeeded` at once instead,
    reusing that job's artifacts (`cache_hit`, `cached_from`)."""
    idempotent = (
        IdempotentRequest(
            caller.team_id, idempotency_key, "POST /v1/jobs", fingerprint(body.model_dump_json())
        )
        if idempotency_key
        else None
    )
    if idempotent and (replay := replay_if_seen(session, idempotent, settings.idempotency_ttl_s)):
        return replay
    quotas.check_rate(broker, caller)
    valid = validate_job(body, catalog, settings)
    webhook = valid_webhook_url(body.webhook, settings)
    seed = valid.params.get("seed")
    if body.cache and seed is None:
        raise InvalidRequest.for_field("cache", "needs params.seed")
    key = (
        cache_key(
            kind=valid.kind,
            model=valid.model,
            prompt=valid.prompt,
            params=valid.params,
            explicit_labels=explicit_labels(session, settings, caller.team_id),
        )
        if seed is not None
        else None
    )
    source = (
        find_source(session, team_id=caller.team_id, model=valid.model, key=key)
        if body.cache and key is not None
        else None
    )
    events_filter = [str(word) for word in dict.fromkeys(body.webhook_events_filter)]
    if source is not None:
        hit_id = record_hit(
            session,
            source,
            key_prefix=caller.key_prefix,
            metadata=valid.metadata,
            priority=valid.priority,
            webhook=webhook,
            webhook_events_filter=events_filter,
            retention_s=settings.artifact_retention_s,
        )
        job = job_queries.get_job(session, hit_id)
        assert job is not None  # inserted just now, in this transaction
    else:
        quotas.check_queue(session, caller, adding=1)
        # Every job with an explicit seed gets its key, so a later `cache` request reuses it.
        job = job_queries.create_job(
            session,
            kind=valid.kind,
            model=valid.model,
            prompt=valid.prompt,
            params=valid.params,
            metadata=valid.metadata,
            team_id=caller.team_id,
            key_prefix=caller.key_prefix,
            priority=valid.priority,
            webhook=webhook,
            webhook_events_filter=events_filter,
            cache_key=key,
        )
    audit.record(
        session,
        audit.key_actor(caller),
        audit.AuditAction.JOB_SUBMITTED,
        target_type="job",
        target_id=job.id,
        details={"kind": job.kind, "model": job.model, "cache_hit": source is not None},
    )
    public = job_public(request, settings, job)
    location = f"/v1/jobs/{job.id}"
    if idempotent:
        remember(
            session,
            idempotent,
            status_code=202,
            body=public.model_dump(mode="json"),
            headers={"Location": location},
        )
    try:
        session.commit()
    except IntegrityError:
        # A concurrent request with the same key won: answer what it answered.
        session.rollback()
        if idempotent and (
            replay := replay_if_seen(session, idempotent, settings.idempotency_ttl_s)
        ):
            return replay
        raise
    response.headers["Location"] = location
    return public


def explicit_labels(session: Session, settings: Settings, team_id: uuid.UUID) -> bool:
    """Whether the team's artifacts get visible labels, as the worker decides it."""
    team = session.get(Team, team_id)
    return settings.explicit_labels or (team is not None and team.explicit_labels)


@router.get("", response_model=JobList)
def list_jobs(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    status: JobStatus | None = None,
    kind: Kind | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: uuid.UUID | None = None,
) -> JobList:
    """Jobs, newest first; follow `next_cursor` for older ones."""
    jobs = job_queries.list_jobs(session, limit=limit, before=cursor, status=status, kind=kind)
    next_cursor = str(jobs[-1].id) if len(jobs) == limit else None
    return JobList(data=[job_public(request, settings, j) for j in jobs], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobPublic)
def get_job(
    job_id: uuid.UUID, request: Request, session: SessionDep, settings: SettingsDep
) -> JobPublic:
    """A job with its status and artifacts."""
    job = job_queries.get_job(session, job_id)
    if job is None:
        raise NotFound("job", job_id)
    return job_public(request, settings, job)


@router.post("/{job_id}/cancel", response_model=JobPublic)
def cancel_job(
    job_id: uuid.UUID, request: Request, session: SessionDep, settings: SettingsDep
) -> JobPublic:
    """Cancel a queued or running job; a finished job answers 409."""
    canceled = job_queries.cancel_job(session, job_id)
    session.commit()
    job = job_queries.get_job(session, job_id)
    if job is None:
        raise NotFound("job", job_id)
    if not canceled:
        raise Conflict(f"job {job_id} is already {job.status}")
    return job_public(request, settings, job)


@router.post("/{job_id}/retry", response_model=JobPublic, responses=quotas.TOO_MANY_REQUESTS)
def retry_job(
    job_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    caller: CallerDep,
) -> JobPublic:
    """Re-queue a failed or canceled job; any other status answers 409, and a team at its
    max_queued 429."""
    requeued = job_queries.requeue_jobs(
        session, statuses=(JobStatus.FAILED, JobStatus.CANCELED), job_id=job_id
    )
    if requeued:
        quotas.check_requeue(session, caller)
    # The batch's stored results no longer describe it: they are written anew at its end.
    batch_id = requeued[0].batch_id if requeued else None
    stale_results = (
        batch_queries.clear_batch_results(session, batch_id=batch_id) if batch_id else None
    )
    session.commit()
    if stale_results is not None:
        store.delete(stale_results)
    job = job_queries.get_job(session, job_id)
    if job is None:
        raise NotFound("job", job_id)
    if not requeued:
        raise Conflict(f"job {job_id} is {job.status}; only failed or canceled jobs are retried")
    return job_public(request, settings, job)
