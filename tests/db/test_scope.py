"""A session scoped to a team (db.scope) reads, updates and deletes only that team's rows,
whatever the query; a session opened alongside it with `scoped_like` is scoped the same."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aigc.settings import Settings
from aigc.vocab import JobStatus
from db import batches as batch_queries
from db import jobs as job_queries
from db.batches import NewJob
from db.scope import scope_to_team, scoped_like, scoped_team
from db.tables import Job
from tests.conftest import TeamKey


def _batch(engine: sa.Engine, owner: TeamKey) -> tuple[uuid.UUID, uuid.UUID]:
    """A batch of one job for the team; returns (batch id, job id)."""
    job = NewJob(kind="text", model="echo", prompt="p", params={}, metadata={})
    with Session(engine) as session, session.begin():
        batch, [job_id] = batch_queries.create_batch(
            session, jobs=[job], priority="low", metadata={}, team_id=owner.team_id
        )
        return batch.id, job_id


def test_a_scoped_session_sees_and_changes_only_its_teams_rows(
    settings: Settings, db_engine: sa.Engine, team: TeamKey, other_team: TeamKey
) -> None:
    mine_batch, mine = _batch(db_engine, team)
    theirs_batch, theirs = _batch(db_engine, other_team)
    with Session(db_engine) as session:
        scope_to_team(session, team.team_id)
        assert job_queries.get_job(session, theirs) is None
        assert session.get(Job, theirs) is None
        assert batch_queries.get_batch(session, theirs_batch) is None
        assert not batch_queries.batch_jobs(session, theirs_batch, limit=10)
        listed = {job.id for job in job_queries.list_jobs(session, limit=100)}
        assert listed == {mine}
        # Updates are scoped too: the other team's job is not canceled.
        assert not job_queries.cancel_job(session, theirs)
        assert batch_queries.cancel_batch(session, theirs_batch) == 0
        assert job_queries.cancel_job(session, mine)
        session.commit()
        # A second session for the same request (the streamed results' pages).
        with scoped_like(Session(db_engine), session) as page:
            assert not batch_queries.batch_jobs(page, theirs_batch, limit=10)
            assert [job.id for job in batch_queries.batch_jobs(page, mine_batch, limit=10)] == [
                mine
            ]
    with Session(db_engine) as unscoped:
        with scoped_like(Session(db_engine), unscoped) as other:
            assert scoped_team(other) is None
        statuses = {job.id: job.status for job in job_queries.list_jobs(unscoped, limit=100)}
        assert statuses == {mine: JobStatus.CANCELED, theirs: JobStatus.QUEUED}
