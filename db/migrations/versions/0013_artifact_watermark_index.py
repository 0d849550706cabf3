"""artifacts: an index on the last 64 bits of the id, the watermark id an image carries in
its pixels (aigc.watermark), so a file stripped of its labels is traced in one lookup

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 20:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX artifacts_watermark_id ON artifacts ((substring(uuid_send(id), 9, 8)))"
    )


def downgrade() -> None:
    op.execute("DROP INDEX artifacts_watermark_id")
