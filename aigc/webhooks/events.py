"""The webhook event vocabulary: the types a receiver gets and the filters that choose them."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """The `type` of a webhook message; a team endpoint subscribes to a set of these."""

    JOB_STARTED = "job.started"
    JOB_PROGRESS = "job.progress"
    JOB_COMPLETED = "job.completed"
    BATCH_STARTED = "batch.started"
    BATCH_PROGRESS = "batch.progress"
    BATCH_COMPLETED = "batch.completed"


class EventFilter(StrEnum):
    """`webhook_events_filter` of a job or a batch: which of its events go to its webhook.
    `job_completed` is a batch's: each of its jobs' completion."""

    START = "start"
    PROGRESS = "progress"
    COMPLETED = "completed"
    JOB_COMPLETED = "job_completed"


JOB_FILTERS = (EventFilter.START, EventFilter.PROGRESS, EventFilter.COMPLETED)
BATCH_FILTERS = (*JOB_FILTERS, EventFilter.JOB_COMPLETED)
DEFAULT_ENDPOINT_EVENTS = (EventType.JOB_COMPLETED, EventType.BATCH_COMPLETED)

# A job event of db.events (started, progress, completed; `queued` is none of a webhook's)
# as the filter word that selects it and the type it is sent as.
JOB_EVENTS: dict[str, tuple[EventFilter, EventType]] = {
    "started": (EventFilter.START, EventType.JOB_STARTED),
    "progress": (EventFilter.PROGRESS, EventType.JOB_PROGRESS),
    "completed": (EventFilter.COMPLETED, EventType.JOB_COMPLETED),
}
BATCH_EVENTS: dict[EventType, EventFilter] = {
    EventType.BATCH_STARTED: EventFilter.START,
    EventType.BATCH_PROGRESS: EventFilter.PROGRESS,
    EventType.BATCH_COMPLETED: EventFilter.COMPLETED,
}


class DeliveryStatus(StrEnum):
    """pending → delivering (leased by a sender) → delivered | pending (retry) | failed."""

    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"
