"""The Python SDK of aigc-jobs: `Client` and `AsyncClient` over httpx, typed results and
typed errors. It imports httpx, httpx-sse and pydantic only, never the server's code.

    from aigc.client import Client

    with Client("http://127.0.0.1:8000", api_key="aigc_...") as client:
        job = client.wait(client.submit("text", "Write a haiku about queues").id)
        client.download(job.artifacts[0], "haiku.txt")
"""

from aigc.client.aio import AsyncClient
from aigc.client.errors import (
    ApiError,
    ChecksumMismatch,
    Conflict,
    FieldError,
    Forbidden,
    Gone,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from aigc.client.models import (
    Artifact,
    Batch,
    BatchCounts,
    Job,
    JobError,
    JobModeration,
    JobProgress,
    Provenance,
    ProvenanceModel,
    ProvenanceTimings,
    ResultLine,
    ResultsFormat,
)
from aigc.client.sync import Client

__all__ = [
    "ApiError",
    "Artifact",
    "AsyncClient",
    "Batch",
    "BatchCounts",
    "ChecksumMismatch",
    "Client",
    "Conflict",
    "FieldError",
    "Forbidden",
    "Gone",
    "InvalidRequest",
    "Job",
    "JobError",
    "JobModeration",
    "JobProgress",
    "NotFound",
    "Provenance",
    "ProvenanceModel",
    "ProvenanceTimings",
    "RateLimited",
    "ResultLine",
    "ResultsFormat",
    "Unauthorized",
    "Unavailable",
]
