"""a lighter jobs table for bulk inserts: fewer indexes, no foreign keys

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 14:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every listing is a team's (the API scopes each query to the caller's team), newest
    # first: (team_id, id) reads a page in order and the status or kind filter applies as it
    # goes. The global (status, id) and (kind, id) indexes each cost a batch's COPY an
    # index insert per job and served no scoped query.
    op.create_index("ix_jobs_team_id_id", "jobs", ["team_id", "id"])
    op.drop_index("ix_jobs_team_id", table_name="jobs")
    op.drop_index("ix_jobs_status_id", table_name="jobs")
    op.drop_index("ix_jobs_kind_id", table_name="jobs")
    # A batch's jobs are found by (batch_id, line) for its counts too; a team's active jobs
    # (max_queued) are counted on the dispatcher's partial indexes, waiting and in flight.
    op.drop_index("ix_jobs_batch_id_status", table_name="jobs")
    op.drop_index("ix_jobs_team_id_active", table_name="jobs")
    # A batch's COPY of 50,000 jobs had PostgreSQL check, row by row after the COPY, the
    # same team and the same batch 50,000 times each: more than a third of accepting it.
    # The ids come from rows at hand (the authenticated caller's team, the batch inserted
    # in the same transaction) and nothing deletes a team or a batch.
    op.drop_constraint("fk_jobs_team_id_teams", "jobs", type_="foreignkey")
    op.drop_constraint("fk_jobs_batch_id_batches", "jobs", type_="foreignkey")


def downgrade() -> None:
    op.create_index(
        "ix_jobs_team_id_active",
        "jobs",
        ["team_id"],
        postgresql_where="status IN ('queued', 'running')",
    )
    op.create_index("ix_jobs_batch_id_status", "jobs", ["batch_id", "status"])
    op.create_foreign_key(
        "fk_jobs_batch_id_batches", "jobs", "batches", ["batch_id"], ["id"], ondelete="CASCADE"
    )
    op.create_foreign_key(
        "fk_jobs_team_id_teams", "jobs", "teams", ["team_id"], ["id"], ondelete="CASCADE"
    )
    op.create_index("ix_jobs_kind_id", "jobs", ["kind", "id"])
    op.create_index("ix_jobs_status_id", "jobs", ["status", "id"])
    op.create_index("ix_jobs_team_id", "jobs", ["team_id"])
    op.drop_index("ix_jobs_team_id_id", table_name="jobs")
