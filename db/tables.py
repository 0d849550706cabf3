"""ORM tables. The schema itself is created by Alembic migrations, never by create_all."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from aigc.ids import uuid7
from aigc.vocab import KINDS, BatchApi, JobStatus, Priority, Role
from aigc.webhooks.events import DeliveryStatus

# Stable constraint names so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# A queued job the dispatcher has not sent to the broker yet, and a job in the broker or
# running: the predicates of the partial indexes the dispatcher reads (migration 0007).
WAITING = "status = 'queued' AND dispatched_at IS NULL"
IN_FLIGHT = "dispatched_at IS NOT NULL AND status IN ('queued', 'running')"
# An artifact or file whose bytes the retention sweep will delete once it expires
# (migration 0010), and a batch's stored results likewise.
EXPIRING = "expires_at IS NOT NULL AND purged_at IS NULL"
RESULTS_EXPIRING = "expires_at IS NOT NULL AND results_key IS NOT NULL"
# A job a cache lookup may reuse, and one whose model revision says which weights are
# current (migration 0016).
CACHED = "status = 'succeeded' AND cache_key IS NOT NULL"
REVISIONED = "status = 'succeeded' AND model_revision IS NOT NULL"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Team(Base):
    """A team sharing the service: its own jobs, batches, files and keys, and its share."""

    __tablename__ = "teams"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Share of the GPUs relative to other teams with work waiting.
    weight: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Limits; NULL means the deployment's default (unbounded unless configured).
    max_queued: Mapped[int | None] = mapped_column(Integer)
    max_running: Mapped[int | None] = mapped_column(Integer)
    # Submissions per second (a token bucket with a burst of one second's worth).
    rate_per_s: Mapped[float | None] = mapped_column(Float)
    # Seconds its artifacts (with their jobs and batch results) and its files are kept;
    # NULL means the deployment's AIGC_ARTIFACT_RETENTION_S / AIGC_FILE_RETENTION_S.
    artifact_retention_s: Mapped[int | None] = mapped_column(Integer)
    file_retention_s: Mapped[int | None] = mapped_column(Integer)
    # Visible labels on its artifacts (workers/explicit_labels.py) besides the implicit ones.
    explicit_labels: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiKey(Base):
    """An API key, stored only as its SHA-256; `prefix` identifies it in lists and logs."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(_in("role", Role), name="role"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(8), default=Role.MEMBER)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    team: Mapped[Team] = relationship()


class TeamOwned:
    """Rows that belong to a team. The API's sessions see only the caller's team's rows
    (db.scope); workers and the dispatcher see all."""

    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )


class Job(TeamOwned, Base):
    __tablename__ = "jobs"
    # Server-side defaults (created_at, queued_at) come back with the INSERT's RETURNING:
    # a new job can be answered without reading it again.
    __mapper_args__ = {"eager_defaults": True}
    __table_args__ = (
        CheckConstraint(_in("status", JobStatus), name="status"),
        CheckConstraint(_in("kind", KINDS), name="kind"),
        CheckConstraint(_in("priority", Priority), name="priority"),
        # A team's jobs newest first: every listing (status and kind filter it).
        Index("ix_jobs_team_id_id", "team_id", "id"),
        # Results in input order and status counts per batch.
        # A batch's jobs: results in input order, and its counts by status.
        Index("ix_jobs_batch_id_line", "batch_id", "line", unique=True),
        # The dispatcher's scans: expired leases; per kind, the teams with jobs waiting and
        # each team's next jobs by tier then age; each team's jobs in flight.
        Index("ix_jobs_running_lease", "lease_expires_at", postgresql_where="status = 'running'"),
        Index("ix_jobs_waiting", "kind", "team_id", "priority", "id", postgresql_where=WAITING),
        Index("ix_jobs_in_flight", "team_id", postgresql_where=IN_FLIGHT),
        # The result cache: a team's reusable jobs by key, and its newest model revisions.
        Index("ix_jobs_cache", "team_id", "cache_key", postgresql_where=CACHED),
        Index(
            "ix_jobs_model_revision",
            "team_id",
            "model",
            "finished_at",
            postgresql_where=REVISIONED,
        ),
    )

    # No foreign keys on the hot table (migration 0008): a batch writes tens of thousands of
    # rows at once, and PostgreSQL would check each row's team and batch one by one after
    # the COPY. Both ids are written from rows at hand: the authenticated caller's team and
    # the batch inserted in the same transaction; nothing deletes a team or a batch.
    # team_id is indexed with id (ix_jobs_team_id_id), not alone.
    team_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    # UUIDv7: ordering by id is ordering by creation time.
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    kind: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(256))
    prompt: Mapped[str] = mapped_column(Text)
    # Validated params with the model's defaults applied: what the worker actually ran.
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    priority: Mapped[str] = mapped_column(
        String(8), default=Priority.NORMAL, server_default=Priority.NORMAL
    )
    # A stable aigc.errors.ErrorCode, never a Python class name.
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    worker: Mapped[str | None] = mapped_column(String(255))
    # `metadata` is reserved on declarative classes; the column keeps the public name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    batch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # Position in the batch's input (0-based) and the client's own id for the line.
    line: Mapped[int | None] = mapped_column(Integer)
    custom_id: Mapped[str | None] = mapped_column(String(256))
    # The key that submitted it (its visible prefix).
    key_prefix: Mapped[str | None] = mapped_column(String(16))
    # Until when the worker running the job holds it; renewed by the worker's heartbeat.
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the job last became queued (created or sent back).
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # When the dispatcher sent it to the broker; NULL while it waits in PostgreSQL. Set on
    # queued and running jobs (in flight), cleared whenever a job goes back to the queue.
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Steps (tokens, denoising steps) done of the total while it runs, stored at a bounded rate.
    progress_done: Mapped[int | None] = mapped_column(Integer)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    # When its artifacts expire (set with them on success); NULL: kept forever.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Where the job's own events go (a batch's jobs use their batch's), and which of them
    # (aigc.webhooks.events.EventFilter values). NULL for most jobs: no default, no index.
    webhook: Mapped[str | None] = mapped_column(Text)
    webhook_events_filter: Mapped[list[str] | None] = mapped_column(JSONB)
    # A blocked job's refusal: {rule, rule_id, reason_code, stage}; NULL for all others.
    moderation: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    # The sha256 of the weights that made a succeeded job's artifacts (models.revision),
    # as its labels carry it; NULL before it succeeds (and for jobs from before 0014).
    model_revision: Mapped[str | None] = mapped_column(String(64))
    # sha256 of what makes an identical request (db.result_cache.cache_key); set on a
    # single job submitted with an explicit seed, so a later `cache: true` request reuses it.
    cache_key: Mapped[str | None] = mapped_column(String(64))
    # A cache hit's source: the job whose artifacts' bytes it shares; NULL for a job that ran.
    cached_from: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))

    artifacts: Mapped[list[Artifact]] = relationship(
        back_populates="job", order_by="Artifact.index", cascade="all, delete-orphan"
    )


class Batch(TeamOwned, Base):
    """A group of jobs submitted together. Its counts and most of its status are derived
    from its jobs, so finishing a job never contends on the batch row."""

    __tablename__ = "batches"
    __mapper_args__ = {"eager_defaults": True}
    __table_args__ = (
        CheckConstraint(_in("api", BatchApi), name="api"),
        CheckConstraint(_in("priority", Priority), name="priority"),
        Index("ix_batches_results_expiring", "expires_at", postgresql_where=RESULTS_EXPIRING),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    # Which API created it, and so the shape it is served in.
    api: Mapped[str] = mapped_column(String(8), default=BatchApi.NATIVE)
    priority: Mapped[str] = mapped_column(String(8), default=Priority.NORMAL)
    total: Mapped[int] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # OpenAI Batch API fields (api == "openai").
    endpoint: Mapped[str | None] = mapped_column(String(64))
    completion_window: Mapped[str | None] = mapped_column(String(16))
    input_file_id: Mapped[str | None] = mapped_column(String(64))
    output_file_id: Mapped[str | None] = mapped_column(String(64))
    error_file_id: Mapped[str | None] = mapped_column(String(64))
    # The finished batch's results JSONL in the store: written once, then served from there.
    results_key: Mapped[str | None] = mapped_column(Text)
    results_bytes: Mapped[int | None] = mapped_column(BigInteger)
    results_sha256: Mapped[str | None] = mapped_column(String(64))
    # When the stored results expire (set as they are stored); the sweep then deletes them.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The batch's webhook and its filter (EventFilter values, `job_completed` included).
    webhook: Mapped[str | None] = mapped_column(Text)
    webhook_events_filter: Mapped[list[str] | None] = mapped_column(JSONB)
    # When its `batch.completed` webhooks were made: once per time it finishes (the
    # deliverer clears it when a retry sends a job back to the queue).
    completed_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class File(TeamOwned, Base):
    """A file of the OpenAI Files API: an uploaded batch input or a batch's output/errors."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_expiring", "expires_at", postgresql_where=EXPIRING),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(256))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Under the team's file retention; NULL: kept until deleted.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the retention sweep deleted the bytes; the row stays so the API answers 410.
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(TeamOwned, Base):
    """The first response to a request sent with an Idempotency-Key, replayed to retries."""

    __tablename__ = "idempotency_keys"

    # Keys are the team's own: two teams may use the same key.
    team_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    # The route the key was used on ("POST /v1/jobs"): the same key may serve two routes.
    route: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    headers: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class Artifact(TeamOwned, Base):
    __tablename__ = "artifacts"
    __table_args__ = (
        Index("ix_artifacts_expiring", "expires_at", postgresql_where=EXPIRING),
        # Not unique: a cache hit's artifacts share their source's bytes (migration 0016).
        Index("ix_artifacts_storage_key", "storage_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    # Position among the job's outputs (several images for num_images > 1).
    index: Mapped[int] = mapped_column(Integer)
    mime_type: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(Text)
    # A cache hit's artifact: the one whose bytes (and so whose label) it shares.
    source_artifact_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # The key that submitted its job.
    key_prefix: Mapped[str | None] = mapped_column(String(16))
    # Kind-specific facts; the ones that do not apply stay NULL.
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    characters: Mapped[int | None] = mapped_column(Integer)
    tokens: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Under the team's artifact retention; NULL: kept forever.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the retention sweep deleted the bytes; the row stays so the API answers 410.
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    job: Mapped[Job] = relationship(back_populates="artifacts")


ARTIFACT_FACTS = ("width", "height", "duration_s", "sample_rate", "characters", "tokens")


# ---- Webhooks -------------------------------------------------------------------------


class WebhookEndpoint(TeamOwned, Base):
    """A team's receiver of all its jobs' and batches' events of the types it subscribes to."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    url: Mapped[str] = mapped_column(Text)
    # aigc.webhooks.events.EventType values.
    events: Mapped[list[str]] = mapped_column(JSONB)
    description: Mapped[str] = mapped_column(String(256), default="")
    enabled: Mapped[bool] = mapped_column(default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookSecret(TeamOwned, Base):
    """A team's signing secret (`whsec_` + base64). The current one has no expiry; a
    rotated-out one signs too until `expires_at`."""

    __tablename__ = "webhook_secrets"
    __table_args__ = (
        Index(
            "ix_webhook_secrets_current",
            "team_id",
            unique=True,
            postgresql_where="expires_at IS NULL",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:  # the secret never appears in logs or tracebacks
        return f"WebhookSecret(id={self.id}, team_id={self.team_id})"


class WebhookDelivery(TeamOwned, Base):
    """One message to one receiver: the webhooks' outbox, sent at least once."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(_in("status", DeliveryStatus), name="status"),
        # The sender's scan: what is due (and leases that ran out).
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where="status IN ('pending', 'delivering')",
        ),
        Index("ix_webhook_deliveries_team_id_id", "team_id", "id"),
        Index("ix_webhook_deliveries_job_id", "job_id", postgresql_where="job_id IS NOT NULL"),
        Index(
            "ix_webhook_deliveries_batch_id", "batch_id", postgresql_where="batch_id IS NOT NULL"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    # `webhook-id`: one per (event, receiver), the same on every attempt and redelivery, so
    # a fan-out run twice inserts nothing twice and receivers can drop duplicates.
    msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    # NULL: the job's or batch's own `webhook`.
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="SET NULL"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Due time while pending; the lease's end while delivering.
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # No retry after this (the event's time plus AIGC_WEBHOOK_MAX_AGE_S).
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    attempt_log: Mapped[list[WebhookAttempt]] = relationship(
        order_by="WebhookAttempt.id", cascade="all, delete-orphan"
    )


class WebhookAttempt(Base):
    """One try of a delivery: what the receiver answered and how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # NULL: no HTTP answer (refused destination, connection error, timeout).
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float] = mapped_column(Float)
    # The start of the answer's body, at most 1 KiB.
    response_snippet: Mapped[str | None] = mapped_column(Text)


class WebhookCursor(Base):
    """How far a consumer (the deliverer's fan-out) has read job_events."""

    __tablename__ = "webhook_cursors"

    consumer: Mapped[str] = mapped_column(String(32), primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ModerationRule(Base):
    """A moderation rule: a team's own, or global (team_id NULL) beside the rules file's.
    Any change moves moderation_state.rules_version (a trigger, migration 0012)."""

    __tablename__ = "moderation_rules"
    __table_args__ = (CheckConstraint("kind IN ('terms', 'regex')", name="kind"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    terms: Mapped[list[str] | None] = mapped_column(JSONB)
    pattern: Mapped[str | None] = mapped_column(Text)
    reason_code: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(default=True, server_default="true")
    # The key that made it (its prefix).
    created_by: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuditEvent(Base):
    """Who did what: append-only (a trigger refuses UPDATE, DELETE and TRUNCATE)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    team_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    key_prefix: Mapped[str | None] = mapped_column(String(16))
    # admin or member (the key's role), or `system` for the dispatcher and workers.
    actor_role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    target_type: Mapped[str | None] = mapped_column(String(16))
    target_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
