"""error codes, job progress, stored batch results

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Python class names recorded before errors had stable codes.
OLD_ERROR_TYPES = {
    "WorkerLost": "worker_lost",
    "InvalidInput": "invalid_input",
    "ModelLoadError": "model_load_failed",
    "OutOfMemoryError": "out_of_memory",
    "JobTimeout": "timeout",
    "UnknownModel": "model_not_found",
}


def upgrade() -> None:
    op.alter_column("jobs", "error_type", new_column_name="error_code", type_=sa.String(64))
    for old, new in OLD_ERROR_TYPES.items():
        op.execute(
            sa.text("UPDATE jobs SET error_code = :new WHERE error_code = :old").bindparams(
                new=new, old=old
            )
        )
    op.execute(
        "UPDATE jobs SET error_code = 'generation_failed' WHERE error_code IS NOT NULL "
        "AND error_code !~ '^[a-z_]+$'"
    )
    # Progress of a running job: steps (tokens, denoising steps) done of the total.
    op.add_column("jobs", sa.Column("progress_done", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("progress_total", sa.Integer(), nullable=True))
    # A finished batch's results JSONL, written once to the store and then served from it.
    op.add_column("batches", sa.Column("results_key", sa.Text(), nullable=True))
    op.add_column("batches", sa.Column("results_bytes", sa.BigInteger(), nullable=True))
    op.add_column("batches", sa.Column("results_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("batches", "results_sha256")
    op.drop_column("batches", "results_bytes")
    op.drop_column("batches", "results_key")
    op.drop_column("jobs", "progress_total")
    op.drop_column("jobs", "progress_done")
    op.alter_column("jobs", "error_code", new_column_name="error_type", type_=sa.String(128))
