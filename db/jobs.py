"""Queries on jobs and their artifacts. Each state change is one conditional UPDATE, so a
late or duplicate delivery finds the row in another state and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from db.tables import Artifact, Job


@dataclass(frozen=True)
class NewArtifact:
    """An artifact already written to storage, to be recorded with the job's outcome."""

    index: int
    mime_type: str
    size_bytes: int
    sha256: str
    storage_key: str
    facts: dict[str, int | float]


def create_job(
    session: Session,
    *,
    kind: str,
    model: str,
    prompt: str,
    params: dict[str, Any],
    metadata: dict[str, Any],
    priority: str = "normal",
) -> Job:
    job = Job(
        kind=kind,
        model=model,
        prompt=prompt,
        params=params,
        meta=metadata,
        priority=priority,
        status="queued",
        attempts=0,
    )
    session.add(job)
    session.flush()
    return job


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
        .where(Job.id == job_id, Job.status.in_(("queued", "running")))
        .values(status="canceled", finished_at=func.now())
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def claim_job(session: Session, job_id: uuid.UUID, *, worker: str) -> Job | None:
    """queued → running for this worker; None when the job is not queued any more."""
    return session.scalar(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(
            status="running",
            worker=worker,
            attempts=Job.attempts + 1,
            started_at=func.now(),
            error_type=None,
            error_message=None,
        )
        .returning(Job)
    )


def succeed_job(
    session: Session, job_id: uuid.UUID, *, worker: str, artifacts: Sequence[NewArtifact]
) -> bool:
    """running → succeeded with its artifact rows, in the caller's transaction.

    False (and nothing recorded) when the job stopped being this worker's run meanwhile,
    e.g. it was canceled.
    """
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running", Job.worker == worker)
        .values(status="succeeded", finished_at=func.now())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.add_all(
        Artifact(
            job_id=job_id,
            index=artifact.index,
            mime_type=artifact.mime_type,
            size_bytes=artifact.size_bytes,
            sha256=artifact.sha256,
            storage_key=artifact.storage_key,
            **artifact.facts,
        )
        for artifact in artifacts
    )
    return True


def fail_job(
    session: Session, job_id: uuid.UUID, *, worker: str, error_type: str, error_message: str
) -> bool:
    """running → failed with the error; False when the job is no longer this worker's run."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running", Job.worker == worker)
        .values(
            status="failed",
            error_type=error_type,
            error_message=error_message,
            finished_at=func.now(),
        )
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def get_artifact(session: Session, artifact_id: uuid.UUID) -> Artifact | None:
    return session.get(Artifact, artifact_id)
