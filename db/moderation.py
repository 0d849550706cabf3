"""Moderation's queries: the rules (a team's, and global ones kept in the database), the
version that tells a cache it is stale, and blocking jobs."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from aigc.errors import ErrorCode
from aigc.moderation import Match, Rule, RuleKind, Stage
from aigc.vocab import JobStatus
from db.jobs import this_run
from db.tables import Job, ModerationRule, Team


def rules_version(session: Session) -> int:
    """Moves on every change of moderation_rules (a trigger): one row, one read."""
    return int(session.execute(text("SELECT rules_version FROM moderation_state")).scalar_one())


def as_rule(row: ModerationRule) -> Rule:
    return Rule(
        id=str(row.id),
        name=row.name,
        kind=RuleKind(row.kind),
        reason_code=row.reason_code,
        terms=tuple(row.terms or ()),
        pattern=row.pattern,
    )


def enabled_rules(session: Session) -> dict[uuid.UUID | None, list[Rule]]:
    """Every enabled rule by team (None: global), oldest first."""
    rows = session.scalars(
        select(ModerationRule)
        .where(ModerationRule.enabled)
        .order_by(ModerationRule.created_at, ModerationRule.id)
    )
    by_team: dict[uuid.UUID | None, list[Rule]] = {}
    for row in rows:
        by_team.setdefault(row.team_id, []).append(as_rule(row))
    return by_team


def list_rules(session: Session, *, team_id: uuid.UUID | None) -> Sequence[ModerationRule]:
    owner = (
        ModerationRule.team_id.is_(None) if team_id is None else ModerationRule.team_id == team_id
    )
    return session.scalars(
        select(ModerationRule).where(owner).order_by(ModerationRule.created_at, ModerationRule.id)
    ).all()


def get_rule(
    session: Session, rule_id: uuid.UUID, *, team_id: uuid.UUID | None
) -> ModerationRule | None:
    owner = (
        ModerationRule.team_id.is_(None) if team_id is None else ModerationRule.team_id == team_id
    )
    return session.scalar(select(ModerationRule).where(ModerationRule.id == rule_id, owner))


def team_names(session: Session, team_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = session.execute(select(Team.id, Team.name).where(Team.id.in_(list(team_ids))))
    return {team_id: name for team_id, name in rows}


def prompts(
    session: Session, job_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, str, str | None]]:
    """Each job's prompt and negative prompt: the texts the input stage checks."""
    negative = Job.params["negative_prompt"].astext
    return [
        (job_id, prompt, neg)
        for job_id, prompt, neg in session.execute(
            select(Job.id, Job.prompt, negative).where(Job.id.in_(list(job_ids)))
        )
    ]


def block_jobs(
    session: Session, refused: Mapping[uuid.UUID, Match], *, stage: Stage
) -> list[uuid.UUID]:
    """queued → blocked, with the rule in the error and in `moderation`; the ids changed.
    One UPDATE per rule that matched (a chunk's refusals share a few rules at most)."""
    by_match: dict[Match, list[uuid.UUID]] = {}
    for job_id, match in refused.items():
        by_match.setdefault(match, []).append(job_id)
    blocked: list[uuid.UUID] = []
    for match, job_ids in by_match.items():
        blocked += session.scalars(
            update(Job)
            .where(Job.id.in_(job_ids), Job.status == JobStatus.QUEUED)
            .values(
                status=JobStatus.BLOCKED,
                error_code=ErrorCode.CONTENT_BLOCKED,
                error_message=match.message(),
                moderation=match.details(stage),
                # Taken with its chunk but never sent: no broker ever held it.
                dispatched_at=None,
                finished_at=func.now(),
            )
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
    return blocked


def block_run(
    session: Session, job_id: uuid.UUID, *, worker: str, attempt: int, match: Match
) -> uuid.UUID | None:
    """running → blocked for this run (stage output: its text was refused, nothing stored);
    the job's team, None when it is no longer this run."""
    result = session.execute(
        update(Job)
        .where(this_run({job_id: attempt}, worker))
        .values(
            status=JobStatus.BLOCKED,
            error_code=ErrorCode.CONTENT_BLOCKED,
            error_message=match.message(),
            moderation=match.details(Stage.OUTPUT),
            lease_expires_at=None,
            finished_at=func.now(),
        )
        .returning(Job.team_id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none()
