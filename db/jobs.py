"""Queries on jobs and their artifacts. Each state change is one conditional UPDATE, so a
late or duplicate delivery finds the row in another state and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import and_, func, insert, select, text, tuple_, update
from sqlalchemy.orm import Session, selectinload

from aigc.errors import ErrorCode
from aigc.ids import uuid7
from aigc.vocab import ACTIVE_JOB_STATUSES, DEFAULT_JOB_PRIORITY, JobStatus, Kind
from db.dispatch_queue import notify_dispatcher
from db.intervals import seconds_from_now
from db.retention import expiry
from db.session import affected_rows
from db.tables import ARTIFACT_FACTS, IN_FLIGHT, WAITING, Artifact, Job, Team


def back_in_queue() -> dict[str, Any]:
    """The fields that put a job back in the queue, the same for every way back (a transient
    failure, an expired lease, a retry): waiting for the dispatcher again, with no worker,
    lease or progress of the run that ended."""
    return {
        "status": JobStatus.QUEUED,
        "dispatched_at": None,
        "worker": None,
        "started_at": None,
        "lease_expires_at": None,
        "progress_done": None,
        "progress_total": None,
        "queued_at": func.now(),
    }


@dataclass(frozen=True)
class NewArtifact:
    """An artifact already written to storage, to be recorded with the job's outcome."""

    index: int
    mime_type: str
    size_bytes: int
    sha256: str
    storage_key: str
    facts: dict[str, int | float]
    # Made by the worker before storing: the label inside the bytes names it.
    id: uuid.UUID = field(default_factory=uuid7)


def create_job(
    session: Session,
    *,
    kind: str,
    model: str,
    prompt: str,
    params: dict[str, Any],
    metadata: dict[str, Any],
    team_id: uuid.UUID,
    key_prefix: str | None = None,
    priority: str = DEFAULT_JOB_PRIORITY,
    webhook: str | None = None,
    webhook_events_filter: list[str] | None = None,
    cache_key: str | None = None,
) -> Job:
    job = Job(
        cache_key=cache_key,
        webhook=webhook,
        webhook_events_filter=webhook_events_filter if webhook else None,
        team_id=team_id,
        key_prefix=key_prefix,
        kind=kind,
        model=model,
        prompt=prompt,
        params=params,
        meta=metadata,
        priority=priority,
        status=JobStatus.QUEUED,
        attempts=0,
        artifacts=[],  # known empty: serializing the new job reads nothing back
    )
    session.add(job)
    session.flush()
    notify_dispatcher(session)
    return job


def count_active_jobs(session: Session, *, team_id: uuid.UUID) -> int:
    """The team's queued and running jobs, however many finished jobs it has: those waiting
    (ix_jobs_waiting, one range per kind) plus those in flight (ix_jobs_in_flight), the two
    partial indexes the dispatcher reads anyway, counted index-only."""
    waiting = select(func.count()).where(
        text(WAITING), Job.kind.in_([str(kind) for kind in Kind]), Job.team_id == team_id
    )
    in_flight = select(func.count()).where(text(IN_FLIGHT), Job.team_id == team_id)
    return int(session.scalar(waiting) or 0) + int(session.scalar(in_flight) or 0)


def get_job(session: Session, job_id: uuid.UUID) -> Job | None:
    return session.scalar(select(Job).where(Job.id == job_id).options(selectinload(Job.artifacts)))


def list_jobs(
    session: Session,
    *,
    limit: int,
    before: uuid.UUID | None = None,
    status: str | None = None,
    kind: str | None = None,
) -> Sequence[Job]:
    """Newest first; `before` is the cursor (the last id of the previous page)."""
    query = select(Job).options(selectinload(Job.artifacts)).order_by(Job.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Job.id < before)
    if status is not None:
        query = query.where(Job.status == status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return session.scalars(query).all()


def cancel_job(session: Session, job_id: uuid.UUID) -> bool:
    """Cancel a queued or running job; False when it had already finished (or doesn't exist).

    A running job's outcome is then discarded: its worker's final UPDATE finds it canceled.
    """
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE_JOB_STATUSES))
        .values(status=JobStatus.CANCELED, finished_at=func.now())
    )
    return affected_rows(result) == 1


class ClaimedJob(NamedTuple):
    """What a worker needs of a job it claimed: one attempt (`attempts`) of it to run."""

    id: uuid.UUID
    kind: str
    model: str
    prompt: str
    params: dict[str, Any]
    attempts: int
    team_id: uuid.UUID
    # Seconds it waited queued before this claim, on the database's clock (metrics).
    waited_s: float = 0.0
    # Its team's option: visible labels on its artifacts (workers/explicit_labels.py).
    explicit_labels: bool = False


def claim_jobs(
    session: Session, job_ids: Sequence[uuid.UUID], *, worker: str, lease_s: float
) -> list[ClaimedJob]:
    """queued → running for this worker with a lease, for those of the ids still queued
    (in id order, which is input order within a batch).

    A job canceled, already run or running elsewhere is left as it is: a late or duplicate
    delivery does nothing.
    """
    # Read with the claim: the team's option as it is when the job starts.
    explicit_labels = select(Team.explicit_labels).where(Team.id == Job.team_id).scalar_subquery()
    rows = session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.RUNNING,
            # A duplicate message may deliver a job the dispatcher had put back to wait:
            # it is in flight from here on either way (max_running counts it).
            dispatched_at=func.coalesce(Job.dispatched_at, func.now()),
            worker=worker,
            attempts=Job.attempts + 1,
            started_at=func.now(),
            lease_expires_at=seconds_from_now(lease_s),
            error_code=None,
            error_message=None,
        )
        .returning(
            Job.id,
            Job.kind,
            Job.model,
            Job.prompt,
            Job.params,
            Job.attempts,
            Job.team_id,
            func.extract("epoch", func.now() - Job.queued_at),
            explicit_labels,
        )
    ).all()
    claimed = (
        ClaimedJob(
            job_id,
            kind,
            model,
            prompt,
            params,
            attempts,
            team_id,
            max(0.0, float(waited_s)),
            bool(explicit),
        )
        for job_id, kind, model, prompt, params, attempts, team_id, waited_s, explicit in rows
    )
    return sorted(claimed, key=lambda job: job.id)


def this_run(
    runs: Mapping[uuid.UUID, int],
    worker: str,
    statuses: Sequence[JobStatus] = (JobStatus.RUNNING,),
) -> Any:
    """Rows still running as this worker's attempt: a job another worker (or a later attempt
    of this one) took over after its lease expired is not ours to finish. The primary key
    finds them: (id, attempts) pairs."""
    return and_(
        # The plain id list lets the planner use the primary key, whatever else is running.
        Job.id.in_(list(runs)),
        tuple_(Job.id, Job.attempts).in_(list(runs.items())),
        Job.status.in_(statuses),
        Job.worker == worker,
    )


def still_running(session: Session, *, runs: Mapping[uuid.UUID, int], worker: str) -> bool:
    """Whether any of these runs is still running as this worker's: False once all were
    canceled (or taken over). One primary-key lookup that stops at the first row, cheap
    enough for a worker to ask between every two denoising steps or tokens."""
    found = session.scalar(select(Job.id).where(this_run(runs, worker)).limit(1))
    return found is not None


def store_progress(
    session: Session,
    *,
    runs: Mapping[uuid.UUID, int],
    worker: str,
    done: int,
    total: int,
    final: bool = False,
) -> int:
    """Record how far a run has got (steps done of total) on its jobs; returns rows written.

    Only rows still running as this run change. With `final`, rows canceled while the run
    went on are written too, so a canceled job shows the step its worker really stopped at
    (a retry clears `worker`, so it never matches a later run's row).
    """
    statuses = (JobStatus.RUNNING, JobStatus.CANCELED) if final else (JobStatus.RUNNING,)
    result = session.execute(
        update(Job).where(this_run(runs, worker, statuses)).values(_progress_values((done, total)))
    )
    return affected_rows(result)


def renew_leases(
    session: Session, runs: Mapping[uuid.UUID, int], *, worker: str, lease_s: float
) -> int:
    """The worker's heartbeat: extend the lease of its runs that are still running."""
    result = session.execute(
        update(Job).where(this_run(runs, worker)).values(lease_expires_at=seconds_from_now(lease_s))
    )
    return affected_rows(result)


def succeed_jobs(
    session: Session,
    *,
    worker: str,
    runs: Mapping[uuid.UUID, int],
    artifacts: Mapping[uuid.UUID, Sequence[NewArtifact]],
    progress: tuple[int, int] | None = None,
    retention_s: int | None = None,
    model_revision: str | None = None,
) -> set[uuid.UUID]:
    """running → succeeded with their artifact rows, for several jobs in one statement and
    the caller's transaction. `runs` maps each job to the attempt that produced `artifacts`;
    `progress` (steps done, total), the run's last report, goes in with the status. Job
    and artifacts expire under the team's artifact retention, else `retention_s` (the
    deployment's default; None keeps them forever). `model_revision`, the weights hash
    of the model that ran them (models.revision), is kept for provenance.

    Returns the ids recorded. A job that stopped being this run meanwhile (canceled, or
    taken over after its lease expired) is left out, with no artifact rows. The rows go in
    with the one status change to `succeeded`, which happens once per job: a job never ends
    with two sets or half a set.
    """
    # The artifacts belong to the job's team, name the key that submitted it and expire
    # with it.
    recorded = {
        job_id: (team_id, key_prefix, expires_at)
        for job_id, team_id, key_prefix, expires_at in session.execute(
            update(Job)
            .where(this_run(runs, worker))
            .values(
                status=JobStatus.SUCCEEDED,
                finished_at=func.now(),
                lease_expires_at=None,
                expires_at=expiry(Job.team_id, Team.artifact_retention_s, retention_s),
                model_revision=model_revision,
                **_progress_values(progress),
            )
            .returning(Job.id, Job.team_id, Job.key_prefix, Job.expires_at)
        )
    }
    rows = [
        {
            "id": artifact.id,
            "job_id": job_id,
            "team_id": team_id,
            "key_prefix": key_prefix,
            "index": artifact.index,
            "mime_type": artifact.mime_type,
            "size_bytes": artifact.size_bytes,
            "sha256": artifact.sha256,
            "storage_key": artifact.storage_key,
            "expires_at": expires_at,
            **{fact: artifact.facts.get(fact) for fact in ARTIFACT_FACTS},
        }
        for job_id, (team_id, key_prefix, expires_at) in recorded.items()
        for artifact in artifacts[job_id]
    ]
    if rows:
        session.execute(insert(Artifact), rows)
    return set(recorded)


def _progress_values(progress: tuple[int, int] | None) -> dict[str, int]:
    if progress is None:
        return {}
    done, total = progress
    return {"progress_done": done, "progress_total": total}


def fail_job(
    session: Session,
    job_id: uuid.UUID,
    *,
    worker: str,
    attempt: int,
    error_code: str,
    error_message: str,
) -> bool:
    """running → failed with the error; False when the job is no longer this run."""
    result = session.execute(
        update(Job)
        .where(this_run({job_id: attempt}, worker))
        .values(
            status=JobStatus.FAILED,
            error_code=error_code,
            error_message=error_message,
            finished_at=func.now(),
            lease_expires_at=None,
        )
    )
    return affected_rows(result) == 1


def release_job(
    session: Session,
    job_id: uuid.UUID,
    *,
    worker: str,
    attempt: int,
    max_attempts: int,
    error_code: str,
    error_message: str,
) -> str | None:
    """After a transient failure: back to `queued` for another try, or `failed` once it has
    had max_attempts. Returns the new status, None when the job is no longer this run."""
    if attempt < max_attempts:
        values = back_in_queue()
    else:
        values = {"status": JobStatus.FAILED, "finished_at": func.now(), "lease_expires_at": None}
    values.update(error_code=error_code, error_message=error_message)
    status: str = values["status"]
    result = session.execute(update(Job).where(this_run({job_id: attempt}, worker)).values(values))
    return status if affected_rows(result) == 1 else None


def reap_expired_leases(session: Session, *, max_attempts: int) -> list[Job]:
    """Jobs whose worker stopped renewing its lease (killed, host lost): back to `queued`,
    or `failed` with worker_lost once they have had max_attempts. Returns the requeued ones."""
    expired = and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < func.now())
    session.execute(
        update(Job)
        .where(expired, Job.attempts >= max_attempts)
        .values(
            status=JobStatus.FAILED,
            error_code=ErrorCode.WORKER_LOST,
            error_message=f"the worker running this job stopped {max_attempts} time(s)",
            finished_at=func.now(),
            lease_expires_at=None,
        )
    )
    requeued = session.scalars(
        update(Job)
        .where(expired, Job.attempts < max_attempts)
        .values(back_in_queue())
        .returning(Job)
    ).all()
    return sorted(requeued, key=lambda job: job.id)


def requeue_jobs(
    session: Session,
    *,
    statuses: Sequence[str],
    job_id: uuid.UUID | None = None,
    batch_id: uuid.UUID | None = None,
) -> list[Job]:
    """Back to `queued` for jobs (one, or a batch's) in one of `statuses`; returns them in
    input order for dispatch. Succeeded jobs are never touched, so their artifacts stay."""
    query = update(Job).where(Job.status.in_(statuses))
    if job_id is not None:
        query = query.where(Job.id == job_id)
    if batch_id is not None:
        query = query.where(Job.batch_id == batch_id)
    requeued = session.scalars(
        query.values(
            {**back_in_queue(), "error_code": None, "error_message": None, "finished_at": None}
        ).returning(Job)
    ).all()
    if requeued:
        notify_dispatcher(session)
    return sorted(requeued, key=lambda job: (job.line or 0, job.id))


def get_artifact(session: Session, artifact_id: uuid.UUID) -> Artifact | None:
    return session.get(Artifact, artifact_id)


class ArtifactOrigin(NamedTuple):
    job_id: uuid.UUID
    batch_id: uuid.UUID | None
    team_id: uuid.UUID


def artifact_origin(session: Session, artifact_id: uuid.UUID) -> ArtifactOrigin | None:
    """The job, batch and team an artifact came from, whichever team owns it: a query on
    the tables themselves, which team scoping (db.scope) does not filter, so a verifier can
    say "ours, not yours". The caller decides what of it to show."""
    artifacts, jobs = Artifact.__table__, Job.__table__
    row = session.execute(
        select(jobs.c.id, jobs.c.batch_id, jobs.c.team_id)
        .select_from(artifacts.join(jobs, artifacts.c.job_id == jobs.c.id))
        .where(artifacts.c.id == artifact_id)
    ).first()
    return ArtifactOrigin(*row) if row is not None else None


def artifact_origin_by_watermark(session: Session, watermark_id: int) -> ArtifactOrigin | None:
    """As artifact_origin, for the artifact whose id ends in `watermark_id`'s 64 bits
    (aigc.watermark.watermark_id_of), through the index migration 0013 makes on them."""
    artifacts, jobs = Artifact.__table__, Job.__table__
    tail = func.substring(func.uuid_send(artifacts.c.id), 9, 8)
    row = session.execute(
        select(jobs.c.id, jobs.c.batch_id, jobs.c.team_id)
        .select_from(artifacts.join(jobs, artifacts.c.job_id == jobs.c.id))
        .where(tail == watermark_id.to_bytes(8, "big"))
        .limit(1)
    ).first()
    return ArtifactOrigin(*row) if row is not None else None
