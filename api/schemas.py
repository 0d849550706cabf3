"""Request and response bodies, in families per resource."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from aigc import moderation
from aigc.settings import MAX_RETENTION_S
from aigc.ssrf import MAX_URL_CHARS
from aigc.vocab import (
    DEFAULT_BATCH_PRIORITY,
    DEFAULT_JOB_PRIORITY,
    BatchApi,
    BatchStatus,
    JobStatus,
    Kind,
    Priority,
    Role,
)
from aigc.webhooks.events import (
    BATCH_FILTERS,
    DEFAULT_ENDPOINT_EVENTS,
    JOB_FILTERS,
    DeliveryStatus,
    EventType,
)
from db.tables import ARTIFACT_FACTS

# The values of aigc.webhooks.events.EventFilter, as plain strings: a wrong one's 422 lists
# them as a client wrote them.
JobEventFilter = Literal["start", "progress", "completed"]
BatchEventFilter = Literal["start", "progress", "completed", "job_completed"]


class JobRequest(BaseModel):
    """What a job asks for, alone or as a batch's line."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    prompt: str = Field(min_length=1)
    model: str | None = Field(None, min_length=1, max_length=256)
    params: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    priority: Priority = DEFAULT_JOB_PRIORITY


WebhookUrlField = Annotated[
    str | None,
    Field(
        None,
        min_length=1,
        max_length=MAX_URL_CHARS,
        description=(
            "An https URL the events are sent to, signed the Standard Webhooks way "
            "(see /v1/webhooks/secret)."
        ),
        examples=["https://example.com/hooks/aigc"],
    ),
]


class JobCreate(JobRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "text",
                    "prompt": "A haiku about queues",
                    "params": {"max_new_tokens": 32},
                },
                {
                    "kind": "image",
                    "model": "tiny-image",
                    "prompt": "a lighthouse at dusk",
                    "params": {"width": 64, "height": 64, "steps": 4},
                    "metadata": {"campaign": "spring"},
                    "priority": "high",
                },
            ]
        },
    )

    webhook: WebhookUrlField = None
    webhook_events_filter: list[JobEventFilter] = Field(
        default=["completed"],
        min_length=1,
        max_length=len(JOB_FILTERS),
        description="Which of the job's events go to `webhook`: start, progress, completed.",
    )
    cache: bool = Field(
        default=False,
        description=(
            "Reuse the result of an earlier identical job of the team (same model and its "
            "current weights, prompt, params and explicit `params.seed`): answered at once "
            "as a new succeeded job with `cache_hit` true, whose artifacts share the earlier "
            "ones' bytes and labels. Needs `params.seed` (a 422 without); with no identical "
            "earlier job, it runs as usual."
        ),
    )


class BatchJobCreate(JobRequest):
    """A job as one element of a native batch; `custom_id` is the client's id for it."""

    custom_id: str | None = Field(None, min_length=1, max_length=256)


class JobModeration(BaseModel):
    """Why moderation refused a blocked job: the rule (by name and id), its reason code, and
    whether the prompt (`input`) or the generated text (`output`) broke it."""

    rule: str
    rule_id: str
    reason_code: str
    stage: Literal["input", "output"]


class JobError(BaseModel):
    code: str = Field(
        description="A stable error code: timeout, worker_lost, invalid_input, content_blocked, ..."
    )
    message: str
    moderation: JobModeration | None = Field(
        None, description="A blocked job's refusal (code content_blocked); absent otherwise."
    )

    @model_serializer(mode="wrap")
    def _omit_absent_moderation(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("moderation") is None:
            data.pop("moderation", None)
        return data


class JobProgress(BaseModel):
    """How far a running job has got, stored by its worker a few times a second: generated
    tokens (text), denoising steps (image) or finished requests (audio) of its chunk, which
    runs as one batch. A canceled job keeps the step it stopped at."""

    done: int = Field(ge=0)
    total: int = Field(ge=0)


class LabelPublic(BaseModel):
    """The artifact's signed AI-generated label (GB 45438-2025 implicit label). PNG and WAV
    carry it inside their bytes; a text artifact keeps its bytes, so save this object as
    JSON to verify it: `aigc verify out.txt --sidecar label.json`."""

    ai_generated: bool
    producer: str = Field(description="The service provider (GB 45438: ContentProducer)")
    content_id: str = Field(description="The artifact's id (GB 45438: ProduceID)")
    model: str
    model_revision: str = Field(
        description="The sha256 of the model's weights files as its worker loaded them "
        "(see the artifact's provenance); empty for a model without weights"
    )
    job_id: str
    team_id: str
    created_at: str = Field(description="ISO 8601 UTC, the time in the content id")
    version: str
    signature: str = Field(description="HMAC-SHA256 under the deployment's label key")


class ArtifactPublic(BaseModel):
    id: uuid.UUID
    index: int
    mime_type: str
    bytes: int
    sha256: str
    url: str
    # When the bytes expire under the team's retention (then 410); null: kept forever.
    expires_at: datetime | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    sample_rate: int | None = None
    characters: int | None = None
    tokens: int | None = None
    label: LabelPublic | None = None

    @model_serializer(mode="wrap")
    def _omit_facts_of_other_kinds(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if not (k in ARTIFACT_FACTS and v is None)}


class JobPublic(BaseModel):
    id: uuid.UUID
    object: Literal["job"] = "job"
    kind: Kind
    model: str
    prompt: str
    params: dict[str, Any]
    status: JobStatus
    priority: Priority
    error: JobError | None
    # Null until its worker first reports; cleared when the job goes back to the queue.
    progress: JobProgress | None = None
    attempts: int
    worker: str | None
    metadata: dict[str, Any]
    batch_id: uuid.UUID | None = None
    custom_id: str | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # When its artifacts expire under the team's retention; null: kept forever.
    expires_at: datetime | None = None
    artifacts: list[ArtifactPublic]
    webhook: str | None = None
    webhook_events_filter: list[str] | None = None
    cache_hit: bool = Field(
        default=False, description="Whether it reused an earlier job's result (`cache`)"
    )
    cached_from: uuid.UUID | None = Field(
        default=None,
        description="The job whose result it reused; its artifacts' labels name that job",
    )


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobPublic]
    # Pass as `cursor` to get the next (older) page; null on the last page.
    next_cursor: str | None


class BatchCreate(BaseModel):
    """A native batch as JSON. (A JSONL upload carries the same jobs one per line.)"""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "jobs": [
                        {"custom_id": "a", "kind": "text", "prompt": "Hello"},
                        {"custom_id": "b", "kind": "audio", "prompt": "Good morning"},
                    ],
                    "metadata": {"team": "docs"},
                    "priority": "low",
                }
            ]
        },
    )

    jobs: list[dict[str, Any]] = Field(min_length=1)
    metadata: dict[str, Any] | None = None
    priority: Priority = DEFAULT_BATCH_PRIORITY
    webhook: WebhookUrlField = None
    webhook_events_filter: list[BatchEventFilter] = Field(
        default=["completed"],
        min_length=1,
        max_length=len(BATCH_FILTERS),
        description=(
            "Which events go to `webhook`: the batch's start, progress and completed, and "
            "job_completed (each of its jobs')."
        ),
    )


class BatchCounts(BaseModel):
    total: int
    queued: int
    running: int
    succeeded: int
    failed: int
    canceled: int
    blocked: int = Field(description="Jobs moderation refused (see each job's error)")


class BatchPublic(BaseModel):
    id: uuid.UUID
    object: Literal["batch"] = "batch"
    api: Literal[BatchApi.NATIVE] = BatchApi.NATIVE
    status: BatchStatus
    priority: Priority
    counts: BatchCounts
    metadata: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    oldest_queued_at: datetime | None = Field(
        description=(
            "When the batch's longest-waiting queued job was queued (a retry queues a job "
            "anew); null when none is queued."
        )
    )
    cancel_requested_at: datetime | None
    webhook: str | None = None
    webhook_events_filter: list[str] | None = None


class OpenAIBatchErrors(BaseModel):
    object: Literal["list"] = "list"
    data: list[dict[str, Any]]


class OpenAIRequestCounts(BaseModel):
    total: int
    completed: int
    failed: int = Field(description="Failed and cancelled requests (both are in the error file)")


class OpenAIBatch(BaseModel):
    """OpenAI's Batch object: how a batch created through OpenAI's body (`input_file_id`) is
    served. Times are Unix seconds."""

    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: OpenAIBatchErrors | None
    input_file_id: str
    completion_window: str
    status: Literal[
        "validating",
        "failed",
        "in_progress",
        "finalizing",
        "completed",
        "expired",
        "cancelling",
        "cancelled",
    ]
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    in_progress_at: int | None
    expires_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    request_counts: OpenAIRequestCounts
    metadata: dict[str, Any] | None


# A batch is served in the shape of the API that created it: a native batch has
# `api: "native"` and `counts`; an OpenAI batch has `endpoint` and `request_counts`.
BatchObject = Annotated[
    BatchPublic | OpenAIBatch,
    Field(description="A native batch (`api: native`) or OpenAI's Batch object"),
]


class BatchList(BaseModel):
    """OpenAI's list shape, for both native and OpenAI-style batches."""

    object: Literal["list"] = "list"
    data: list[BatchObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class ResultArtifact(ArtifactPublic):
    text: str | None = Field(None, description="A text artifact's output, inline (text only)")


class ResultLine(BaseModel):
    """One line of `GET /v1/batches/{id}/results` (JSONL), in the batch's input order."""

    line: int = Field(description="1-based position in the batch's input")
    custom_id: str | None
    job_id: uuid.UUID
    status: JobStatus
    error: JobError | None
    artifacts: list[ResultArtifact]


class FieldErrorPublic(BaseModel):
    field: str = Field(description="The field that is wrong, dotted: `params.steps`")
    message: str
    line: int | None = Field(None, description="The batch line, for batch uploads (1-based)")


class ErrorDetail(BaseModel):
    type: str = Field(
        description="A stable code (aigc.errors.ErrorCode): invalid_request, not_found, ...",
        examples=["invalid_request"],
    )
    message: str
    errors: list[FieldErrorPublic] | None = Field(
        None, description="For bad input: each wrong field (and batch line)"
    )


class ErrorEnvelope(BaseModel):
    """The body of every error the API answers, 4xx and 5xx alike."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "type": "invalid_request",
                        "message": "params.steps: Input should be less than or equal to 50",
                        "errors": [
                            {
                                "field": "params.steps",
                                "message": "Input should be less than or equal to 50",
                            }
                        ],
                    }
                }
            ]
        }
    )

    error: ErrorDetail


# The OpenAPI schema of a download's bytes.
BINARY: dict[str, Any] = {"type": "string", "format": "binary"}


class ModelPublic(BaseModel):
    name: str
    kind: Kind
    default: bool
    aliases: list[str] = Field(
        default_factory=list,
        description="Other names accepted as `model` for this model (AIGC_MODEL_ALIASES).",
    )
    description: str
    params_schema: dict[str, Any]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelPublic]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


# Teams and keys (admin routes and the operator's CLI validate with the same models) ------

TEAM_NAME_PATTERN = r"^[A-Za-z0-9._-]+$"
MAX_TEAM_NAME_CHARS = 64  # teams.name is String(64)
# A share beyond 1000:1 means nothing on any real pool of workers.
MAX_TEAM_WEIGHT = 1000
MAX_TEAM_LIMIT = 2**31 - 1  # the columns are 32-bit integers
MAX_TEAM_RATE_PER_S = 1_000_000.0
MAX_KEY_NAME_CHARS = 128  # api_keys.name is String(128)

TeamName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_TEAM_NAME_CHARS,
        pattern=TEAM_NAME_PATTERN,
        description="Letters, digits, `.`, `_` and `-`.",
        examples=["marketing"],
    ),
]


class TeamLimits(BaseModel):
    """A team's share and limits. As an update, fields left out stay as they are and a
    limit set to null is lifted."""

    model_config = ConfigDict(extra="forbid")

    weight: int = Field(
        1, ge=1, le=MAX_TEAM_WEIGHT, description="Share of the workers against other teams"
    )
    max_queued: int | None = Field(
        None, ge=0, le=MAX_TEAM_LIMIT, description="Most jobs queued at once; null: no limit"
    )
    max_running: int | None = Field(
        None, ge=0, le=MAX_TEAM_LIMIT, description="Most jobs running at once; null: no limit"
    )
    rate_per_s: float | None = Field(
        None,
        gt=0,
        le=MAX_TEAM_RATE_PER_S,
        allow_inf_nan=False,
        description="Job submissions per second; null: no limit",
    )
    artifact_retention_s: int | None = Field(
        None,
        ge=1,
        le=MAX_RETENTION_S,
        description=(
            "Seconds the team's artifacts (and stored batch results) are kept, then deleted "
            "and answered 410; null: the deployment's AIGC_ARTIFACT_RETENTION_S"
        ),
    )
    file_retention_s: int | None = Field(
        None,
        ge=1,
        le=MAX_RETENTION_S,
        description=(
            "Seconds the team's files are kept, then deleted and answered 410; null: the "
            "deployment's AIGC_FILE_RETENTION_S"
        ),
    )
    explicit_labels: bool = Field(
        False,
        description=(
            "Visible labels on the team's artifacts as well as the implicit ones: a corner "
            "mark on images, an `[AI-generated]` first line on text, a two-tone chime before "
            "audio. AIGC_EXPLICIT_LABELS=true turns them on for every team"
        ),
    )


class TeamCreate(TeamLimits):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "marketing", "weight": 2, "max_queued": 10_000}]},
    )

    name: TeamName


class TeamPublic(BaseModel):
    id: uuid.UUID
    name: str
    weight: int
    max_queued: int | None
    max_running: int | None
    rate_per_s: float | None
    artifact_retention_s: int | None
    file_retention_s: int | None
    explicit_labels: bool
    created_at: datetime


class TeamList(BaseModel):
    data: list[TeamPublic]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team: TeamName
    role: Role = Field(Role.MEMBER, description="admin: every team; member: its own team")
    name: str = Field("", max_length=MAX_KEY_NAME_CHARS, description="A label for people")


class KeyPublic(BaseModel):
    """A key as lists show it: its prefix, never the key or its hash."""

    prefix: str = Field(examples=["aigc_1f2e3d4c"])
    team: str
    role: Role
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="The key itself: shown in this answer only, never again")


class KeyList(BaseModel):
    data: list[KeyPublic]


# Webhooks --------------------------------------------------------------------------------

MAX_WEBHOOK_DESCRIPTION_CHARS = 256  # webhook_endpoints.description is String(256)


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://example.com/hooks/aigc",
                    "events": ["job.completed", "batch.completed"],
                    "description": "CMS import",
                }
            ]
        },
    )

    url: str = Field(min_length=1, max_length=MAX_URL_CHARS, description="An https URL")
    events: list[EventType] = Field(
        default_factory=lambda: list(DEFAULT_ENDPOINT_EVENTS),
        min_length=1,
        max_length=len(EventType),
        description="The event types sent to it, for every job and batch of the team",
    )
    description: str = Field("", max_length=MAX_WEBHOOK_DESCRIPTION_CHARS)
    enabled: bool = True


class WebhookEndpointUpdate(BaseModel):
    """Fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, min_length=1, max_length=MAX_URL_CHARS)
    events: list[EventType] | None = Field(None, min_length=1, max_length=len(EventType))
    description: str | None = Field(None, max_length=MAX_WEBHOOK_DESCRIPTION_CHARS)
    enabled: bool | None = None


class WebhookEndpointPublic(BaseModel):
    id: uuid.UUID
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    events: list[str]
    description: str
    enabled: bool
    created_at: datetime


class WebhookEndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookEndpointPublic]
    next_cursor: str | None


class WebhookAttemptPublic(BaseModel):
    attempted_at: datetime
    status_code: int | None = Field(description="Null when no HTTP answer came")
    error: str | None
    latency_ms: float
    response_snippet: str | None = Field(description="The answer's first KiB at most")


class WebhookDeliveryPublic(BaseModel):
    id: uuid.UUID
    object: Literal["webhook_delivery"] = "webhook_delivery"
    msg_id: str = Field(description="The `webhook-id` header: the same on every attempt")
    endpoint_id: uuid.UUID | None = Field(description="Null for a job's or batch's own webhook")
    url: str
    event_type: str
    job_id: uuid.UUID | None
    batch_id: uuid.UUID | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="When it is tried next (pending)")
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any] = Field(
        description="The message; artifact URLs are signed afresh at each attempt"
    )
    attempt_history: list[WebhookAttemptPublic]


class WebhookDeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookDeliveryPublic]
    next_cursor: str | None


class WebhookSecretPublic(BaseModel):
    secret: str = Field(description="`whsec_` + base64: give it to your Standard Webhooks library")
    created_at: datetime
    expires_at: datetime | None = Field(description="Null for the current secret")


class WebhookSecrets(BaseModel):
    """The secrets that sign the team's webhooks now: the current one first; during a
    rotation's overlap the previous one signs too (each message carries both signatures)."""

    data: list[WebhookSecretPublic]


# Moderation and audit (admin routes) ----------------------------------------------------


class RuleCreate(BaseModel):
    """A moderation rule: a list of terms (whole words; a term in a script without word
    spacing, such as Chinese or Thai, anywhere in the text) or a regular expression.
    Matching ignores case and Unicode width/compatibility forms (NFKC)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "team": "marketing",
                    "name": "weapons",
                    "kind": "terms",
                    "terms": ["pipe bomb", "炸弹"],
                    "reason_code": "violence",
                },
                {
                    "name": "ssn",
                    "kind": "regex",
                    "pattern": r"\b\d{3}-\d{2}-\d{4}\b",
                    "reason_code": "pii",
                },
            ]
        },
    )

    team: TeamName | None = Field(None, description="The team it applies to; omitted: every team.")
    name: str = Field(min_length=1, max_length=moderation.MAX_NAME_CHARS)
    kind: Literal["terms", "regex"]
    terms: (
        list[Annotated[str, Field(min_length=1, max_length=moderation.MAX_TERM_CHARS)]] | None
    ) = Field(None, min_length=1, max_length=moderation.MAX_TERMS, description="For kind terms.")
    pattern: str | None = Field(
        None,
        min_length=1,
        max_length=moderation.MAX_PATTERN_CHARS,
        description="For kind regex: searched with a timeout; one that times out refuses the job.",
    )
    reason_code: str = Field(
        max_length=moderation.MAX_REASON_CHARS, pattern=moderation.REASON_PATTERN
    )
    enabled: bool = True


class RulePublic(BaseModel):
    id: uuid.UUID
    object: Literal["moderation_rule"] = "moderation_rule"
    team: str | None = Field(description="null: a global rule")
    name: str
    kind: Literal["terms", "regex"]
    terms: list[str] | None
    pattern: str | None
    reason_code: str
    enabled: bool
    created_by: str | None
    created_at: datetime


class RuleList(BaseModel):
    object: Literal["list"] = "list"
    data: list[RulePublic]


class BlockedJob(BaseModel):
    """A job moderation refused, as an operator reviews it."""

    id: uuid.UUID
    team: str
    kind: Kind
    model: str
    prompt: str
    batch_id: uuid.UUID | None
    line: int | None
    custom_id: str | None
    key_prefix: str | None
    created_at: datetime
    finished_at: datetime | None
    moderation: JobModeration | None


class BlockedJobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BlockedJob]
    next_cursor: str | None


class VerifyOrigin(BaseModel):
    """The job a verified artifact came from, shown to the team that owns it."""

    job_id: uuid.UUID
    batch_id: uuid.UUID | None
    team_id: uuid.UUID


class VerifyLayer(BaseModel):
    layer: Literal["metadata", "c2pa", "watermark"] = Field(
        description="Which kind of label: `metadata` (in the file, or the text's sidecar), "
        "`c2pa` (the content credentials manifest, PNG and WAV), `watermark` (in an image's "
        "pixels; it survives re-encoding and resizing)"
    )
    status: Literal["valid", "invalid", "missing"]
    detail: str
    label: LabelPublic | None
    watermark_id: str | None = Field(
        None, description="The watermark layer's 64-bit id (hex): the artifact id's last 64 bits"
    )


class VerifyResult(BaseModel):
    """What `POST /v1/verify` found in a file."""

    format: Literal["png", "jpeg", "webp", "wav", "text"]
    status: Literal["valid", "invalid", "missing"] = Field(
        description="invalid if any layer is (altered, or signed elsewhere), else valid if any "
        "is, else missing (never labelled, or stripped)"
    )
    layers: list[VerifyLayer]
    origin: Literal["your_team", "another_team", "unknown"] = Field(
        description="For a valid label: whether its content id is one of this deployment's "
        "artifacts, and whose; `unknown` otherwise"
    )
    job: VerifyOrigin | None = Field(description="Only for the team that owns the artifact")


class ProvenanceArtifact(BaseModel):
    id: uuid.UUID
    index: int = Field(description="Its place among its job's artifacts, from 0")
    mime_type: str
    sha256: str = Field(description="Of the stored (labelled) bytes")
    size: int = Field(description="Bytes")
    created_at: datetime = Field(description="When its job recorded it")


class ProvenanceModel(BaseModel):
    name: str
    kind: Kind
    source: str = Field(
        description="Where the catalog loads it from: a Hugging Face hub id or a folder; "
        "empty for the built-in tiny models (built in the model directory)"
    )
    revision: str = Field(
        description="sha256 (hex) over the bytes of the weights files (*.safetensors, *.bin, "
        "*.pt, *.pth, *.ckpt, *.onnx, *.gguf, subfolders included, in order of their paths) "
        "the worker loaded: the hub cache snapshot's for a hub id. A hub snapshot without "
        "such files gives its commit hash (40 hex); a model without weights, empty. Labels "
        "carry the same value as `model_revision`"
    )


class ProvenanceTimings(BaseModel):
    queued_at: datetime = Field(description="When the run that made it was last queued")
    started_at: datetime | None
    finished_at: datetime | None
    queued_s: float | None = Field(description="From queued_at to started_at")
    run_s: float | None = Field(description="From started_at to finished_at")
    attempts: int = Field(description="Runs it took, this one included")


class ProvenancePublic(BaseModel):
    """Where an artifact came from: what made it, from what request, for whom, where and
    when. The team's own data only (its prompt included)."""

    object: Literal["provenance"] = "provenance"
    artifact: ProvenanceArtifact
    job_id: uuid.UUID
    model: ProvenanceModel
    prompt: str
    params: dict[str, Any] = Field(
        description="As the worker ran them: the model's defaults applied"
    )
    seed: int | None = Field(description="`params.seed`, or null when the job drew its own")
    team: str = Field(description="The team's name")
    key_prefix: str | None = Field(description="The visible prefix of the key that submitted it")
    batch_id: uuid.UUID | None
    line: int | None = Field(description="Its line in the batch's input, from 1")
    custom_id: str | None
    worker: str | None = Field(description="The worker that ran it: host:pid")
    timings: ProvenanceTimings
    inputs: list[ProvenanceArtifact] = Field(
        description="The artifacts it was made from (an image-to-image job's input image); "
        "no job takes one yet, so always empty for now"
    )
    label: LabelPublic = Field(description="The label the artifact carries, as the job shows it")
    cache_hit: bool = Field(
        description="Whether its job reused an earlier identical job's result (`cache`)"
    )
    cached_from: uuid.UUID | None = Field(
        default=None,
        description="For a cache hit, the job that made the bytes: the job its label names "
        "(timings and worker above are the hit's own: it never ran)",
    )
