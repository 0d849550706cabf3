"""teams and API keys; every job, batch, file, artifact and idempotency key belongs to a team

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rows written before teams existed go to the `default` team, created here with this id.
DEFAULT_TEAM_ID = "00000000-0000-7000-8000-000000000001"
OWNED_TABLES = ("jobs", "batches", "files", "artifacts", "idempotency_keys")


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("weight", sa.Integer(), server_default="1", nullable=False),
        sa.Column("max_queued", sa.Integer(), nullable=True),
        sa.Column("max_running", sa.Integer(), nullable=True),
        sa.Column("rate_per_s", sa.Float(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("name", name=op.f("uq_teams_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("team_id", sa.UUID(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('admin', 'member')", name=op.f("ck_api_keys_role")),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_api_keys_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
        sa.UniqueConstraint("sha256", name=op.f("uq_api_keys_sha256")),
    )
    op.create_index(op.f("ix_api_keys_team_id"), "api_keys", ["team_id"])
    op.execute(
        sa.text("INSERT INTO teams (id, name) VALUES (CAST(:id AS uuid), 'default')").bindparams(
            id=DEFAULT_TEAM_ID
        )
    )
    for table in OWNED_TABLES:
        op.add_column(
            table,
            sa.Column(
                "team_id",
                postgresql.UUID(as_uuid=True),
                nullable=False,
                server_default=sa.text(f"'{DEFAULT_TEAM_ID}'::uuid"),
            ),
        )
        op.alter_column(table, "team_id", server_default=None)
        op.create_foreign_key(
            op.f(f"fk_{table}_team_id_teams"), table, "teams", ["team_id"], ["id"],
            ondelete="CASCADE",
        )  # fmt: skip
        if table != "idempotency_keys":
            op.create_index(op.f(f"ix_{table}_team_id"), table, ["team_id"])
    op.add_column("jobs", sa.Column("key_prefix", sa.String(length=16), nullable=True))
    op.add_column("artifacts", sa.Column("key_prefix", sa.String(length=16), nullable=True))
    # An Idempotency-Key is the team's own: the primary key gains the team.
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.create_primary_key("pk_idempotency_keys", "idempotency_keys", ["team_id", "key", "route"])


def downgrade() -> None:
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.create_primary_key("pk_idempotency_keys", "idempotency_keys", ["key", "route"])
    op.drop_column("artifacts", "key_prefix")
    op.drop_column("jobs", "key_prefix")
    for table in OWNED_TABLES:
        op.drop_column(table, "team_id")
    op.drop_index(op.f("ix_api_keys_team_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("teams")
