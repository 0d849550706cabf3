"""The opt-in result cache: an identical request (same team, model and its current
weights, prompt, params with an explicit seed, and visible-label setting) is answered with
the artifacts an earlier job made, as a new job that never reaches a GPU.

A hit is a new job whose artifact rows are new (new ids, the new job's key and expiry) but
point at the source's stored bytes: the bytes, and the labels in them naming the source
artifact and job, are shared, never copied. The retention sweep deletes shared bytes only
when the last row serving them expires (db.retention).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from aigc.ids import uuid7
from aigc.vocab import JobStatus
from db.retention import expiry
from db.tables import ARTIFACT_FACTS, Artifact, Job, Team


def cache_key(
    *, kind: str, model: str, prompt: str, params: dict[str, Any], explicit_labels: bool
) -> str:
    """sha256 (hex) of the canonical JSON of what makes two requests identical: `params`
    as validated, with the model's defaults applied, so leaving a default out or writing
    it out is the same request. Visible labels change the bytes, so they are part of it."""
    canonical = json.dumps(
        {
            "kind": kind,
            "model": model,
            "prompt": prompt,
            "params": params,
            "explicit_labels": explicit_labels,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def newest_revision(*, team_id: uuid.UUID, model: str) -> Any:
    """SQL for the weights hash of the team's most recently finished job of `model`
    (ix_jobs_model_revision): the weights its workers load now, as far as the team saw."""
    ran = aliased(Job)
    return (
        select(ran.model_revision)
        .where(
            ran.team_id == team_id,
            ran.model == model,
            ran.status == JobStatus.SUCCEEDED,
            ran.model_revision.is_not(None),
        )
        .order_by(ran.finished_at.desc())
        .limit(1)
        .scalar_subquery()
    )


def find_source(session: Session, *, team_id: uuid.UUID, model: str, key: str) -> Job | None:
    """The newest succeeded job of the team with this key that ran (not itself a hit) on
    the model's current weights, and whose artifacts are all still there; None: a miss."""
    gone = aliased(Artifact)
    return session.scalar(
        select(Job)
        .where(
            Job.team_id == team_id,
            Job.cache_key == key,
            Job.status == JobStatus.SUCCEEDED,
            Job.cached_from.is_(None),
            Job.model_revision == newest_revision(team_id=team_id, model=model),
            ~exists().where(
                gone.job_id == Job.id,
                (gone.purged_at.is_not(None)) | (gone.expires_at <= func.now()),
            ),
        )
        .order_by(Job.id.desc())
        .limit(1)
    )


def record_hit(
    session: Session,
    source: Job,
    *,
    key_prefix: str | None,
    metadata: dict[str, Any],
    priority: str,
    webhook: str | None,
    webhook_events_filter: list[str] | None,
    retention_s: int | None,
) -> uuid.UUID:
    """The hit as a new job of the source's team, in the caller's transaction: inserted
    queued, then made succeeded by an UPDATE so the events trigger records its `completed`
    event (webhooks and event streams see it end). Never dispatched (dispatched_at set, no
    worker, no attempts). Its artifacts expire under the team's retention, like any job's.
    Returns its id."""
    job = Job(
        team_id=source.team_id,
        key_prefix=key_prefix,
        kind=source.kind,
        model=source.model,
        prompt=source.prompt,
        params=source.params,
        meta=metadata,
        priority=priority,
        webhook=webhook,
        webhook_events_filter=webhook_events_filter if webhook else None,
        status=JobStatus.QUEUED,
        attempts=0,
    )
    session.add(job)
    session.flush()
    expires_at = session.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(
            status=JobStatus.SUCCEEDED,
            dispatched_at=func.now(),
            finished_at=func.now(),
            expires_at=expiry(Job.team_id, Team.artifact_retention_s, retention_s),
            model_revision=source.model_revision,
            cached_from=source.id,
        )
        .returning(Job.expires_at)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    rows = [
        {
            "id": uuid7(),
            "job_id": job.id,
            "team_id": job.team_id,
            "key_prefix": key_prefix,
            "index": artifact.index,
            "mime_type": artifact.mime_type,
            "size_bytes": artifact.size_bytes,
            "sha256": artifact.sha256,
            "storage_key": artifact.storage_key,
            "source_artifact_id": artifact.source_artifact_id or artifact.id,
            "expires_at": expires_at,
            **{fact: getattr(artifact, fact) for fact in ARTIFACT_FACTS},
        }
        for artifact in source.artifacts
    ]
    session.execute(insert(Artifact), rows)
    # The UPDATE went past the ORM: the caller reads the job afresh.
    session.expire(job)
    return job.id
