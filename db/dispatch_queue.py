"""The dispatcher's queries: PostgreSQL is the queue. A queued job waits here (WAITING,
`dispatched_at` NULL) until the dispatcher sends it to the broker; from then until it
finishes it is in flight (IN_FLIGHT). Submissions and workers NOTIFY the dispatcher in the
transaction that changes what it should send next."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple

from sqlalchemy import func, select, text, union_all, update
from sqlalchemy.orm import Session

from aigc.vocab import JobStatus, Priority
from db.intervals import seconds_ago
from db.session import affected_rows
from db.tables import IN_FLIGHT, WAITING, Job, Team

NOTIFY_CHANNEL = "aigc_dispatch"

# Each team with jobs waiting of a kind, one index probe per team (a loose index scan of
# ix_jobs_waiting): cheap however many jobs wait.
_WAITING_TEAMS = text(
    f"""
    WITH RECURSIVE teams(team_id) AS (
        (SELECT team_id FROM jobs WHERE {WAITING} AND kind = :kind ORDER BY team_id LIMIT 1)
        UNION ALL
        SELECT (
            SELECT jobs.team_id FROM jobs
            WHERE {WAITING} AND kind = :kind AND jobs.team_id > teams.team_id
            ORDER BY jobs.team_id LIMIT 1
        )
        FROM teams WHERE teams.team_id IS NOT NULL
    )
    SELECT team_id FROM teams WHERE team_id IS NOT NULL
    """
)


class TeamShare(NamedTuple):
    """What the dispatcher weighs a team by."""

    weight: int
    max_running: int | None


class DispatchedChunk(NamedTuple):
    """Jobs just marked dispatched, to go to the broker as one message."""

    priority: str
    batch_id: uuid.UUID | None
    job_ids: tuple[uuid.UUID, ...]


def notify_dispatcher(session: Session) -> None:
    """Wake the dispatcher when this transaction commits: work was added, claimed or ended.
    PostgreSQL folds repeated notifications of one transaction into one."""
    session.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))


def listen_statement() -> str:
    return f"LISTEN {NOTIFY_CHANNEL}"


def waiting_teams(session: Session, kind: str) -> list[uuid.UUID]:
    return list(session.scalars(_WAITING_TEAMS, {"kind": kind}))


def team_shares(session: Session, team_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TeamShare]:
    rows = session.execute(
        select(Team.id, Team.weight, Team.max_running).where(Team.id.in_(list(team_ids)))
    )
    return {
        team_id: TeamShare(max(1, weight), max_running) for team_id, weight, max_running in rows
    }


def in_flight_counts(session: Session, team_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Each team's jobs in the broker or running (what max_running limits)."""
    if not team_ids:
        return {}
    rows = session.execute(
        select(Job.team_id, func.count())
        .where(text(IN_FLIGHT), Job.team_id.in_(list(team_ids)))
        .group_by(Job.team_id)
    )
    counts = {team_id: 0 for team_id in team_ids}
    counts.update({team_id: int(n) for team_id, n in rows})
    return counts


def in_flight_of_kind(session: Session, kind: str) -> int:
    """Jobs of this kind in the broker or running, whatever their team: bounded by the
    window and the workers, so the count reads a few index entries."""
    count = session.scalar(
        select(func.count()).select_from(Job).where(text(IN_FLIGHT), Job.kind == kind)
    )
    return int(count or 0)


def take_chunk(
    session: Session,
    *,
    kind: str,
    team_id: uuid.UUID,
    chunk_size: Callable[[str], int],
    at_most: int | None = None,
) -> DispatchedChunk | None:
    """Mark the team's next chunk of waiting jobs of this kind dispatched and return it:
    its highest tier first, oldest first within it (a requeued job keeps its place), the
    run of jobs that share the first one's model, tier and batch, up to `chunk_size(model)`
    and `at_most`. None when the team has nothing waiting."""
    waiting = (text(WAITING), Job.kind == kind, Job.team_id == team_id)
    # One index probe per tier, stopping at the first tier with work.
    heads = [
        select(Job.model, Job.priority, Job.batch_id)
        .where(*waiting, Job.priority == str(tier))
        .order_by(Job.id)
        .limit(1)
        for tier in Priority
    ]
    head = session.execute(union_all(*heads).limit(1)).first()
    if head is None:
        return None
    model, priority, batch_id = head
    size = max(1, chunk_size(model) if at_most is None else min(chunk_size(model), at_most))
    same_batch = Job.batch_id.is_(None) if batch_id is None else Job.batch_id == batch_id
    picked = (
        select(Job.id)
        .where(*waiting, Job.priority == priority, Job.model == model, same_batch)
        .order_by(Job.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    )
    job_ids = session.scalars(
        update(Job)
        .where(Job.id.in_(picked.scalar_subquery()))
        .values(dispatched_at=func.now())
        .returning(Job.id)
    ).all()
    if not job_ids:
        return None
    return DispatchedChunk(priority, batch_id, tuple(sorted(job_ids)))


def return_to_waiting(session: Session, job_ids: Sequence[uuid.UUID]) -> int:
    """Dispatched jobs the broker does not hold (a publish failed, the broker lost them):
    waiting again, to be sent anew. Jobs a worker claimed meanwhile are left alone."""
    if not job_ids:
        return 0
    result = session.execute(
        update(Job)
        .where(Job.id.in_(list(job_ids)), Job.status == JobStatus.QUEUED)
        .values(dispatched_at=None)
    )
    return affected_rows(result)


def unclaimed_dispatched(session: Session, *, older_than_s: float, limit: int) -> list[uuid.UUID]:
    """Jobs sent to the broker over `older_than_s` ago that no worker has claimed: the ones
    to check against what the broker holds."""
    return list(
        session.scalars(
            select(Job.id)
            .where(
                text(IN_FLIGHT),
                Job.status == JobStatus.QUEUED,
                Job.dispatched_at < seconds_ago(older_than_s),
            )
            .limit(limit)
        )
    )
