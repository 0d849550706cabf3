"""db.metrics against real PostgreSQL: the active jobs per kind, tier, team and status that
the dispatcher's /metrics reports, and that reading them touches only the partial indexes
of active jobs, never the finished rows."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aigc.settings import Settings
from db.batches import NewJob, create_batch
from db.metrics import _ACTIVE_JOBS, ActiveJobs, active_jobs
from tests.conftest import TeamKey


def add_jobs(
    engine: sa.Engine, team: TeamKey, kind: str, model: str, n: int, priority: str
) -> list[uuid.UUID]:
    with Session(engine) as session, session.begin():
        _, ids = create_batch(
            session,
            jobs=[NewJob(kind, model, f"p{i}", {}, {}) for i in range(n)],
            priority=priority,
            metadata={},
            team_id=team.team_id,
        )
    return ids


def set_status(engine: sa.Engine, ids: list[uuid.UUID], sql: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE jobs SET {sql} WHERE id = ANY(:ids)"), {"ids": ids})


def snapshot(engine: sa.Engine) -> dict[tuple[str, str, str, str], ActiveJobs]:
    with Session(engine) as session:
        return {(g.kind, g.priority, g.team, g.status): g for g in active_jobs(session)}


def test_active_jobs_per_kind_tier_team_and_status(
    settings: Settings, db_engine: sa.Engine, team: TeamKey, other_team: TeamKey
) -> None:
    images = add_jobs(db_engine, team, "image", "tiny-image", 10, "low")
    # Some were sent to the broker and wait there: still queued.
    set_status(db_engine, images[:4], "dispatched_at = now()")
    # An older one, sent back to wait after a lost worker: its wait counts from then.
    set_status(db_engine, images[4:5], "queued_at = now() - interval '90 seconds'")
    texts = add_jobs(db_engine, other_team, "text", "echo", 5, "high")
    set_status(db_engine, texts[:2], "status = 'running', dispatched_at = now()")
    done = add_jobs(db_engine, other_team, "text", "echo", 7, "high")
    set_status(db_engine, done, "status = 'succeeded', finished_at = now()")

    groups = snapshot(db_engine)

    assert set(groups) == {
        ("image", "low", team.name, "queued"),
        ("text", "high", other_team.name, "queued"),
        ("text", "high", other_team.name, "running"),
    }
    queued_images = groups[("image", "low", team.name, "queued")]
    assert queued_images.jobs == 10
    assert 90 <= queued_images.oldest_s < 120
    assert groups[("text", "high", other_team.name, "queued")].jobs == 3
    assert groups[("text", "high", other_team.name, "running")].jobs == 2


def test_nothing_active_reads_as_no_groups(settings: Settings, db_engine: sa.Engine) -> None:
    assert snapshot(db_engine) == {}


def test_the_query_reads_only_the_partial_indexes(
    settings: Settings, db_engine: sa.Engine, team: TeamKey
) -> None:
    # With sequential scans priced out the planner shows whether the indexes of active
    # jobs can answer: a predicate that drifted from migration 0007's would scan the table.
    with db_engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        compiled = str(_ACTIVE_JOBS.compile(conn))
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}"))
    assert "ix_jobs_waiting" in plan, plan
    assert "ix_jobs_in_flight" in plan, plan
    assert "Seq Scan on jobs" not in plan, plan
