"""job_events: every status change and progress report of a job, written by the database

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 16:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One statement-level trigger writes the events of whatever UPDATE changed jobs (a worker's
# claim, progress or outcome, a lease reaped, a cancel, a retry, an operator's own SQL), in
# that UPDATE's transaction: the event exists exactly when the change committed. A job's
# creation is no event: its first state is what a client reads when it starts following.
RECORD_EVENTS = """
CREATE FUNCTION aigc_record_job_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (
        team_id, job_id, batch_id, type, status, progress_done, progress_total, error_code
    )
    SELECT
        new_row.team_id, new_row.id, new_row.batch_id,
        CASE
            WHEN new_row.status = old_row.status THEN 'progress'
            WHEN new_row.status = 'running' THEN 'started'
            WHEN new_row.status = 'queued' THEN 'queued'
            ELSE 'completed'
        END,
        new_row.status, new_row.progress_done, new_row.progress_total, new_row.error_code
    FROM new_rows AS new_row JOIN old_rows AS old_row ON old_row.id = new_row.id
    WHERE new_row.status <> old_row.status
        OR (new_row.status = 'running'
            AND new_row.progress_done IS DISTINCT FROM old_row.progress_done)
    ORDER BY new_row.id;
    IF FOUND THEN
        PERFORM pg_notify('aigc_events', '');
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    # Readers go through events in (txid, id) order and only up to the oldest transaction
    # still running (db.events): ids alone commit out of order, so a reader following them
    # could pass an id whose transaction commits a moment later and never see it.
    op.execute(
        """
        CREATE TABLE job_events (
            txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
            id bigint GENERATED ALWAYS AS IDENTITY,
            team_id uuid NOT NULL,
            job_id uuid NOT NULL,
            batch_id uuid,
            type varchar(16) NOT NULL,
            status varchar(16) NOT NULL,
            progress_done integer,
            progress_total integer,
            error_code varchar(64),
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_job_events PRIMARY KEY (txid, id)
        )
        """
    )
    # A job's events (a few per job); a batch's in reading order; the oldest, to expire.
    op.create_index("ix_job_events_job_id", "job_events", ["job_id"])
    op.create_index(
        "ix_job_events_batch_id",
        "job_events",
        ["batch_id", "txid", "id"],
        postgresql_where=sa.text("batch_id IS NOT NULL"),
    )
    op.create_index("ix_job_events_created_at", "job_events", ["created_at"])
    op.execute(RECORD_EVENTS)
    op.execute(
        "CREATE TRIGGER jobs_record_events AFTER UPDATE ON jobs "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION aigc_record_job_events()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER jobs_record_events ON jobs")
    op.execute("DROP FUNCTION aigc_record_job_events()")
    op.drop_table("job_events")
