"""jobs.model_revision: the sha256 of the weights that made a succeeded job's artifacts,
for GET /v1/artifacts/{id}/provenance and the labels (which carry it)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 20:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable with no default: adding it rewrites no rows of the hot table.
    op.add_column("jobs", sa.Column("model_revision", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "model_revision")
