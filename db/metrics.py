"""What the dispatcher's /metrics reads from PostgreSQL at scrape time: the active jobs
(queued, running) counted per kind, tier, team and status, with the oldest one's age.

Only active rows are read, through the two partial indexes the dispatcher already keeps
(ix_jobs_waiting and ix_jobs_in_flight, migration 0007): the cost follows the jobs queued and
running, never the millions of finished rows. A statement timeout bounds it anyway, so a
scrape can never hold a connection for long."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.tables import IN_FLIGHT, WAITING

# A scrape that takes longer than this returns nothing this time rather than piling up.
SNAPSHOT_TIMEOUT_MS = 2000

# Each branch matches one partial index's predicate exactly, so the planner can use it;
# the groups (a few per kind, tier and team) then get their team's name.
_ACTIVE_JOBS = text(
    f"""
    SELECT groups.kind, groups.priority, teams.name, groups.status, groups.jobs,
           EXTRACT(EPOCH FROM now() - groups.oldest_at) AS oldest_s
    FROM (
        SELECT kind, priority, team_id, status, count(*) AS jobs, min(queued_at) AS oldest_at
        FROM (
            SELECT kind, priority, team_id, status, queued_at FROM jobs WHERE {WAITING}
            UNION ALL
            SELECT kind, priority, team_id, status, queued_at FROM jobs WHERE {IN_FLIGHT}
        ) AS active
        GROUP BY kind, priority, team_id, status
    ) AS groups
    JOIN teams ON teams.id = groups.team_id
    """
)


class ActiveJobs(NamedTuple):
    """Active jobs of one kind, tier, team and status. `oldest_s`: seconds since the
    longest-waiting of them last became queued (for running jobs: since they were queued
    before they started)."""

    kind: str
    priority: str
    team: str
    status: str
    jobs: int
    oldest_s: float


def active_jobs(session: Session) -> list[ActiveJobs]:
    """Every (kind, tier, team, status) group of queued and running jobs, in one query."""
    session.execute(text(f"SET LOCAL statement_timeout = {SNAPSHOT_TIMEOUT_MS}"))
    return [
        ActiveJobs(kind, priority, team, status, int(jobs), max(0.0, float(oldest_s)))
        for kind, priority, team, status, jobs, oldest_s in session.execute(_ACTIVE_JOBS)
    ]
