"""retention: expires_at on jobs, batches, files and artifacts; per-team retention

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 16:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rows whose bytes the dispatcher's sweep has yet to delete once they expire.
SWEPT_TABLES = ("artifacts", "files")


def upgrade() -> None:
    # Nullable with no default: adding them rewrites no table (jobs is the hot one), and
    # NULL (the team's own) or NULL (keep forever) is what every existing row means.
    op.add_column("teams", sa.Column("artifact_retention_s", sa.Integer()))
    op.add_column("teams", sa.Column("file_retention_s", sa.Integer()))
    for table in ("jobs", "batches", "files", "artifacts"):
        op.add_column(table, sa.Column("expires_at", sa.DateTime(timezone=True)))
    for table in SWEPT_TABLES:
        # When the sweep deleted the bytes: the row stays, so the API can answer 410.
        op.add_column(table, sa.Column("purged_at", sa.DateTime(timezone=True)))
        # The sweep's scan: only rows that will expire and still hold bytes, so the index
        # stays empty where nothing expires and shrinks as rows are swept. No index on jobs:
        # nothing reads jobs by expiry, and every job insert would pay for it.
        op.create_index(
            f"ix_{table}_expiring",
            table,
            ["expires_at"],
            postgresql_where="expires_at IS NOT NULL AND purged_at IS NULL",
        )
    op.create_index(
        "ix_batches_results_expiring",
        "batches",
        ["expires_at"],
        postgresql_where="expires_at IS NOT NULL AND results_key IS NOT NULL",
    )


def downgrade() -> None:
    op.drop_index("ix_batches_results_expiring", table_name="batches")
    for table in SWEPT_TABLES:
        op.drop_index(f"ix_{table}_expiring", table_name=table)
        op.drop_column(table, "purged_at")
    for table in ("jobs", "batches", "files", "artifacts"):
        op.drop_column(table, "expires_at")
    op.drop_column("teams", "file_retention_s")
    op.drop_column("teams", "artifact_retention_s")
