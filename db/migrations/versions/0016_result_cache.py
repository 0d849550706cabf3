"""The opt-in result cache: jobs.cache_key (what identifies an identical request) with the
index a cache lookup reads, jobs.cached_from (the job a cache hit reused), and
artifacts.source_artifact_id (the artifact whose bytes a hit's artifact shares). Shared
bytes mean a storage key is no longer unique among artifacts: the unique constraint becomes
a plain index, which the retention sweep reads to keep bytes another row still serves.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CACHED = "status = 'succeeded' AND cache_key IS NOT NULL"
REVISIONED = "status = 'succeeded' AND model_revision IS NOT NULL"


def upgrade() -> None:
    # Nullable with no default: adding them rewrites no rows of the hot table.
    op.add_column("jobs", sa.Column("cache_key", sa.String(64), nullable=True))
    op.add_column("jobs", sa.Column("cached_from", UUID(as_uuid=True), nullable=True))
    op.add_column("artifacts", sa.Column("source_artifact_id", UUID(as_uuid=True), nullable=True))
    op.create_index(
        "ix_jobs_cache", "jobs", ["team_id", "cache_key"], postgresql_where=sa.text(CACHED)
    )
    op.create_index(
        "ix_jobs_model_revision",
        "jobs",
        ["team_id", "model", "finished_at"],
        postgresql_where=sa.text(REVISIONED),
    )
    op.drop_constraint("uq_artifacts_storage_key", "artifacts", type_="unique")
    op.create_index("ix_artifacts_storage_key", "artifacts", ["storage_key"])


def downgrade() -> None:
    op.drop_index("ix_artifacts_storage_key", "artifacts")
    # Fails while a cache hit's rows share a key: delete those first.
    op.create_unique_constraint("uq_artifacts_storage_key", "artifacts", ["storage_key"])
    op.drop_index("ix_jobs_model_revision", "jobs")
    op.drop_index("ix_jobs_cache", "jobs")
    op.drop_column("artifacts", "source_artifact_id")
    op.drop_column("jobs", "cached_from")
    op.drop_column("jobs", "cache_key")
