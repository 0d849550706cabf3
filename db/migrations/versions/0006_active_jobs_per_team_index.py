"""an index of each team's queued and running jobs, for the max_queued check at submit

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Partial: it holds only active jobs, so counting a team's stays cheap however many
    # finished jobs the team keeps. Built inside the migration's transaction (the advisory
    # lock that serialises migrators must hold), which blocks job inserts while it builds.
    op.create_index(
        "ix_jobs_team_id_active",
        "jobs",
        ["team_id"],
        postgresql_where="status IN ('queued', 'running')",
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_team_id_active", table_name="jobs")
