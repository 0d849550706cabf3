"""teams.explicit_labels: visible labels (a corner mark on images, a first line on text, a
chime before audio) as a team's option, off by default

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "teams",
        sa.Column("explicit_labels", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("teams", "explicit_labels")
