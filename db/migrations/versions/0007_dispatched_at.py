"""jobs.dispatched_at: PostgreSQL is the queue, the broker holds a window of it

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = "status = 'queued' AND dispatched_at IS NULL"
IN_FLIGHT = "dispatched_at IS NOT NULL AND status IN ('queued', 'running')"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("dispatched_at", sa.DateTime(timezone=True)))
    # Jobs already queued were published by the API that accepted them: they are in the
    # broker (or the reconciliation returns them to waiting if not).
    op.execute("UPDATE jobs SET dispatched_at = queued_at WHERE status IN ('queued', 'running')")
    # The dispatcher's queue: per kind, the teams with work waiting (a loose index scan) and
    # each team's next jobs by tier then age.
    op.create_index(
        "ix_jobs_waiting",
        "jobs",
        ["kind", "team_id", "priority", "id"],
        postgresql_where=WAITING,
    )
    # Each team's jobs in the broker or running (max_running), and the window's
    # reconciliation with the broker.
    op.create_index("ix_jobs_in_flight", "jobs", ["team_id"], postgresql_where=IN_FLIGHT)
    # Replaced by ix_jobs_waiting: nothing scans queued jobs by age any more.
    op.drop_index("ix_jobs_queued_at", table_name="jobs")


def downgrade() -> None:
    op.create_index(
        "ix_jobs_queued_at", "jobs", ["queued_at"], postgresql_where="status = 'queued'"
    )
    op.drop_index("ix_jobs_in_flight", table_name="jobs")
    op.drop_index("ix_jobs_waiting", table_name="jobs")
    op.drop_column("jobs", "dispatched_at")
