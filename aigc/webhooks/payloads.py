"""What a webhook says, in Standard Webhooks' recommended shape:
`{"type": "job.completed", "timestamp": "<ISO 8601>", "data": {...}}`.

The stored payload is what the event was; artifact URLs are signed at each send (they expire,
and a delivery may be retried for a day), so the stored artifacts carry no `url`."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from aigc.signing import UrlSigner
from aigc.vocab import JobStatus
from aigc.webhooks.events import EventType
from db.batches import BatchCounts
from db.events import JobEvent
from db.tables import Batch, Job

MSG_ID_PREFIX = "msg_"


def message_id(event_key: str, target_key: str) -> str:
    """The stable `webhook-id` of one event to one receiver (at most 64 characters)."""
    digest = hashlib.sha256(f"{event_key}\n{target_key}".encode()).hexdigest()
    return MSG_ID_PREFIX + digest[:48]


def envelope(event_type: EventType, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": str(event_type), "timestamp": at.isoformat(), "data": data}


def job_data(job: Job, event: JobEvent) -> dict[str, Any]:
    """A job as the event saw it: status and progress from the event, the rest from the
    row (an error's message, a succeeded job's artifacts)."""
    data: dict[str, Any] = {
        "id": str(job.id),
        "object": "job",
        "status": event.status,
        "kind": job.kind,
        "model": job.model,
        "batch_id": str(job.batch_id) if job.batch_id else None,
        "custom_id": job.custom_id,
        "progress": event.progress,
    }
    if event.status in (JobStatus.FAILED, JobStatus.BLOCKED):
        data["error"] = {"code": event.error_code, "message": job.error_message or ""}
        if job.moderation:
            data["error"]["moderation"] = job.moderation
    if event.type == "completed" and event.status == JobStatus.SUCCEEDED:
        data["artifacts"] = [
            {
                "id": str(artifact.id),
                "index": artifact.index,
                "mime_type": artifact.mime_type,
                "bytes": artifact.size_bytes,
                "sha256": artifact.sha256,
            }
            for artifact in job.artifacts
        ]
    return data


def batch_data(batch: Batch, status: str, counts: BatchCounts) -> dict[str, Any]:
    return {
        "id": str(batch.id),
        "object": "batch",
        "status": status,
        "counts": {"total": counts.total, **{str(s): counts[s] for s in JobStatus}},
    }


def artifact_url(base_url: str, signer: UrlSigner, artifact_id: uuid.UUID) -> str:
    """The API's signed download URL of an artifact (as api.serialize.artifact_url)."""
    path = f"/v1/artifacts/{artifact_id}/content"
    return f"{base_url.rstrip('/')}{path}?{signer.query(artifact_id)}"


def message_body(payload: dict[str, Any], base_url: str, signer: UrlSigner) -> bytes:
    """The bytes sent: the payload with freshly signed artifact URLs."""
    data = payload.get("data")
    artifacts = data.get("artifacts") if isinstance(data, dict) else None
    if isinstance(data, dict) and artifacts:
        data = {
            **data,
            "artifacts": [
                {**artifact, "url": artifact_url(base_url, signer, uuid.UUID(artifact["id"]))}
                for artifact in artifacts
            ],
        }
        payload = {**payload, "data": data}
    return json.dumps(payload, separators=(",", ":")).encode()
