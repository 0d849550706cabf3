"""webhooks: endpoints, signing secrets, the deliveries outbox and its attempts, the
fan-out's cursor; a webhook on jobs and batches

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 16:30:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _team_id() -> sa.Column[uuid.UUID]:
    return sa.Column(
        "team_id",
        UUID(as_uuid=True),
        sa.ForeignKey("teams.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    # jobs is the hot table: nullable columns with no default (a catalog-only change, no
    # rewrite) and no index; a batch's COPY leaves them NULL (its jobs use the batch's).
    op.add_column("jobs", sa.Column("webhook", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("webhook_events_filter", JSONB(), nullable=True))
    op.add_column("batches", sa.Column("webhook", sa.Text(), nullable=True))
    op.add_column("batches", sa.Column("webhook_events_filter", JSONB(), nullable=True))
    op.add_column(
        "batches", sa.Column("completed_event_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        _team_id(),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", JSONB(), nullable=False),
        sa.Column("description", sa.String(256), nullable=False, server_default=""),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_table(
        "webhook_secrets",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        _team_id(),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    # One current secret per team: two first deliveries racing to make it make one.
    op.create_index(
        "ix_webhook_secrets_current",
        "webhook_secrets",
        ["team_id"],
        unique=True,
        postgresql_where=sa.text("expires_at IS NULL"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        _team_id(),
        sa.Column("msg_id", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "endpoint_id",
            UUID(as_uuid=True),
            sa.ForeignKey("webhook_endpoints.id", ondelete="SET NULL"),
            nullable=True,
            index=True,
        ),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("job_id", UUID(as_uuid=True), nullable=True),
        sa.Column("batch_id", UUID(as_uuid=True), nullable=True),
        sa.Column("payload", JSONB(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()
        ),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivering', 'delivered', 'failed')", name="status"
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'delivering')"),
    )
    op.create_index("ix_webhook_deliveries_team_id_id", "webhook_deliveries", ["team_id", "id"])
    op.create_index(
        "ix_webhook_deliveries_job_id",
        "webhook_deliveries",
        ["job_id"],
        postgresql_where=sa.text("job_id IS NOT NULL"),
    )
    op.create_index(
        "ix_webhook_deliveries_batch_id",
        "webhook_deliveries",
        ["batch_id"],
        postgresql_where=sa.text("batch_id IS NOT NULL"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "delivery_id",
            UUID(as_uuid=True),
            sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column(
            "attempted_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()
        ),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("response_snippet", sa.Text(), nullable=True),
    )
    op.create_table(
        "webhook_cursors",
        sa.Column("consumer", sa.String(32), primary_key=True),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )


def downgrade() -> None:
    op.drop_table("webhook_cursors")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_secrets")
    op.drop_table("webhook_endpoints")
    op.drop_column("batches", "completed_event_at")
    op.drop_column("batches", "webhook_events_filter")
    op.drop_column("batches", "webhook")
    op.drop_column("jobs", "webhook_events_filter")
    op.drop_column("jobs", "webhook")
