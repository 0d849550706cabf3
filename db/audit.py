"""The audit log: who submitted, what was blocked and why, who downloaded what. Rows are
only ever added (a trigger refuses UPDATE, DELETE and TRUNCATE), each in the transaction of
what it records where there is one, so a record exists exactly when the act committed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from db.tables import AuditEvent
from db.teams import KeyOwner

# What the dispatcher and workers act as: no key, no role.
SYSTEM_ACTOR = "system"
# Whoever held a signed artifact URL: no key was shown.
SIGNED_URL_ACTOR = "signed_url"


class AuditAction(StrEnum):
    JOB_SUBMITTED = "job.submitted"
    BATCH_SUBMITTED = "batch.submitted"
    JOB_BLOCKED = "job.blocked"
    ARTIFACT_DOWNLOADED = "artifact.downloaded"
    ARCHIVE_DOWNLOADED = "archive.downloaded"
    RESULTS_DOWNLOADED = "results.downloaded"
    RULE_CREATED = "rule.created"
    RULE_DELETED = "rule.deleted"


@dataclass(frozen=True)
class Actor:
    """Who acted: a key (its team, prefix and role) or the system."""

    team_id: uuid.UUID | None
    key_prefix: str | None
    role: str


def key_actor(owner: KeyOwner) -> Actor:
    return Actor(owner.team_id, owner.key_prefix, str(owner.role))


def record(
    session: Session,
    actor: Actor,
    action: AuditAction,
    *,
    target_type: str | None = None,
    target_id: object | None = None,
    team_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add one row in the session's transaction. `team_id` is whose thing was acted on
    when it is not the actor's own (an admin downloading another team's artifact)."""
    record_many(
        session,
        [
            _row(
                actor,
                action,
                target_type=target_type,
                target_id=target_id,
                team_id=team_id,
                details=details,
            )
        ],
    )


def record_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(AuditEvent), list(rows))


def _row(
    actor: Actor,
    action: AuditAction,
    *,
    target_type: str | None,
    target_id: object | None,
    team_id: uuid.UUID | None,
    details: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "team_id": team_id or actor.team_id,
        "key_prefix": actor.key_prefix,
        "actor_role": actor.role,
        "action": str(action),
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "details": details or {},
    }


def blocked_rows(
    blocked: Sequence[tuple[uuid.UUID, uuid.UUID, dict[str, str]]],
) -> list[dict[str, Any]]:
    """One job.blocked row per (team, job, moderation details), recorded by the system."""
    system = Actor(None, None, SYSTEM_ACTOR)
    return [
        _row(
            system,
            AuditAction.JOB_BLOCKED,
            target_type="job",
            target_id=job_id,
            team_id=team_id,
            details=details,
        )
        for team_id, job_id, details in blocked
    ]


def query_events(
    session: Session,
    *,
    limit: int,
    team_id: uuid.UUID | None = None,
    action: str | None = None,
    since: datetime | None = None,
) -> Sequence[AuditEvent]:
    """Newest first."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if team_id is not None:
        query = query.where(AuditEvent.team_id == team_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    return session.scalars(query).all()
