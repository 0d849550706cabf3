"""moderation: the `blocked` job status, jobs.moderation, moderation_rules with a version
the dispatcher's cache follows; audit_events, append-only

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')"
NEW_STATUSES = "status IN ('queued', 'running', 'succeeded', 'failed', 'canceled', 'blocked')"

# Any change to the rules, however made (the API, an operator's SQL), moves the version in
# the same transaction: the dispatcher reads it each round and recompiles only when it moved.
BUMP_RULES_VERSION = """
CREATE FUNCTION aigc_bump_moderation_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE moderation_state SET rules_version = rules_version + 1;
    RETURN NULL;
END
$$
"""

# The audit log is a record: nothing rewrites or removes it from the application's side.
# (An owner who must prune it disables the trigger deliberately.)
REFUSE_AUDIT_CHANGE = """
CREATE FUNCTION aigc_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    # The job_events trigger (0009) records any other status change as `completed`, so a
    # job ending blocked needs nothing more there. The new check is added NOT VALID and then
    # validated: a scan that does not hold writers off the hot table.
    op.drop_constraint(op.f("ck_jobs_status"), "jobs", type_="check")
    op.execute(f"ALTER TABLE jobs ADD CONSTRAINT ck_jobs_status CHECK ({NEW_STATUSES}) NOT VALID")
    op.execute("ALTER TABLE jobs VALIDATE CONSTRAINT ck_jobs_status")
    # Which rule refused the job, at which stage; NULL for all others (a catalog-only change).
    op.add_column("jobs", sa.Column("moderation", JSONB(), nullable=True))

    op.create_table(
        "moderation_rules",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        # NULL: a global rule kept in the database (beside the rules file's).
        sa.Column(
            "team_id",
            UUID(as_uuid=True),
            sa.ForeignKey("teams.id", ondelete="CASCADE"),
            nullable=True,
            index=True,
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("terms", JSONB(), nullable=True),
        sa.Column("pattern", sa.Text(), nullable=True),
        sa.Column("reason_code", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_by", sa.String(16), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("kind IN ('terms', 'regex')", name="kind"),
        sa.CheckConstraint(
            "(kind = 'terms' AND terms IS NOT NULL) OR (kind = 'regex' AND pattern IS NOT NULL)",
            name="body",
        ),
    )
    op.create_table(
        "moderation_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rules_version", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name="one_row"),
    )
    op.execute("INSERT INTO moderation_state (id, rules_version) VALUES (1, 0)")
    op.execute(BUMP_RULES_VERSION)
    op.execute(
        "CREATE TRIGGER moderation_rules_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        "ON moderation_rules FOR EACH STATEMENT EXECUTE FUNCTION aigc_bump_moderation_version()"
    )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # No foreign key: the record outlives what it names.
        sa.Column("team_id", UUID(as_uuid=True), nullable=True),
        sa.Column("key_prefix", sa.String(16), nullable=True),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target_type", sa.String(16), nullable=True),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("details", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index("ix_audit_events_team_id_id", "audit_events", ["team_id", "id"])
    op.create_index("ix_audit_events_action_id", "audit_events", ["action", "id"])
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.execute(REFUSE_AUDIT_CHANGE)
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION aigc_audit_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION aigc_audit_append_only()"
    )


def downgrade() -> None:
    op.drop_table("audit_events")
    op.execute("DROP FUNCTION aigc_audit_append_only()")
    op.drop_table("moderation_rules")
    op.execute("DROP FUNCTION aigc_bump_moderation_version()")
    op.drop_table("moderation_state")
    op.drop_column("jobs", "moderation")
    # Blocked jobs become failed ones: the old check knows no `blocked`.
    op.execute("UPDATE jobs SET status = 'failed' WHERE status = 'blocked'")
    op.drop_constraint(op.f("ck_jobs_status"), "jobs", type_="check")
    op.execute(f"ALTER TABLE jobs ADD CONSTRAINT ck_jobs_status CHECK ({OLD_STATUSES})")
