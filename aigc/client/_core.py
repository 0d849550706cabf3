"""What the sync and async clients share: configuration, retry decisions, batch bodies."""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from aigc.client.errors import ChecksumMismatch, error_from, retry_after_s
from aigc.client.models import Artifact
from aigc.tabular import read_csv, rows_to_jobs

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
RETRY_STATUSES = frozenset({429, 503})
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
# A server asking for a longer wait than this gets the error instead of a sleeping caller.
MAX_RETRY_AFTER_S = 60.0
POLL_INTERVAL_S = 1.0
# Streams a server without event routes answers: fall back to polling.
NO_STREAM_STATUSES = frozenset({404, 405})

# A list of job dicts, a JSONL or CSV file (by its suffix), or JSONL bytes.
BatchSource = Sequence[Mapping[str, Any]] | str | Path | bytes


@dataclass(frozen=True)
class Config:
    base_url: str
    api_key: str | None
    timeout_s: float
    max_retries: int

    @classmethod
    def make(
        cls, base_url: str | None, api_key: str | None, timeout_s: float, max_retries: int
    ) -> Config:
        if not 0 <= max_retries <= 10:
            raise ValueError("max_retries: must be between 0 and 10")
        if not 0 < timeout_s <= 3600:
            raise ValueError("timeout_s: must be above 0 and at most 3600")
        url = base_url or os.environ.get("AIGC_API_URL") or DEFAULT_BASE_URL
        key = api_key if api_key is not None else os.environ.get("AIGC_API_KEY")
        return cls(url.rstrip("/"), key, timeout_s, max_retries)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def same_origin(self, url: str) -> bool:
        """Whether a URL is the API's own (relative, or on its host): only there does the
        key go. A presigned store URL carries its own authorisation."""
        target, base = urlsplit(url), urlsplit(self.base_url)
        return not target.netloc or (target.scheme, target.netloc) == (base.scheme, base.netloc)


def backoff_s(attempt: int, response: httpx.Response | None) -> float | None:
    """How long to wait before retry number `attempt` (0-based), or None when the answer
    must not be retried: Retry-After where the server sent one, else exponential backoff
    with full jitter."""
    if response is not None:
        if response.status_code not in RETRY_STATUSES:
            return None
        asked = retry_after_s(response)
        if asked is not None:
            return asked if asked <= MAX_RETRY_AFTER_S else None
    return random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt))


def checked(response: httpx.Response) -> httpx.Response:
    if not response.is_success:
        raise error_from(response)
    return response


def batch_request(
    jobs: BatchSource,
    *,
    priority: str | None,
    metadata: Mapping[str, Any] | None,
    webhook: str | None,
    webhook_events: Sequence[str] | None,
) -> dict[str, Any]:
    """httpx request arguments for POST /v1/batches: a JSONL file goes as it is (the
    server numbers its lines), a list or a CSV file as a JSON body."""
    if isinstance(jobs, bytes) or (
        isinstance(jobs, str | Path) and Path(jobs).suffix.lower() in {".jsonl", ".ndjson"}
    ):
        params: dict[str, Any] = {}
        if priority:
            params["priority"] = priority
        if webhook:
            params["webhook"] = webhook
        if webhook_events:
            params["webhook_events_filter"] = list(webhook_events)
        if metadata:
            raise ValueError("metadata: a JSONL upload cannot carry batch metadata")
        return {
            "content": jobs if isinstance(jobs, bytes) else Path(jobs).read_bytes(),
            "params": params or None,
            "headers": {"Content-Type": "application/x-ndjson"},
        }
    if isinstance(jobs, str | Path):
        job_list = rows_to_jobs(read_csv(jobs))
    else:
        job_list = [dict(job) for job in jobs]
    body: dict[str, Any] = {"jobs": job_list}
    if priority:
        body["priority"] = priority
    if metadata:
        body["metadata"] = dict(metadata)
    if webhook:
        body["webhook"] = webhook
    if webhook_events:
        body["webhook_events_filter"] = list(webhook_events)
    return {"json": body}


def job_body(
    kind: str,
    prompt: str,
    *,
    model: str | None,
    params: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    priority: str | None,
    webhook: str | None,
    cache: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "prompt": prompt}
    if cache:  # left out otherwise: a server that predates the cache accepts the body
        body["cache"] = True
    optional = {
        "model": model,
        "params": dict(params) if params is not None else None,
        "metadata": dict(metadata) if metadata is not None else None,
        "priority": priority,
        "webhook": webhook,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def write_label_sidecar(artifact: Artifact | str, path: Path) -> None:
    """A text artifact's label, beside it as PATH.label.json, where `aigc verify PATH` looks:
    text bytes carry no label of their own."""
    if isinstance(artifact, Artifact) and artifact.label and artifact.mime_type.startswith("text/"):
        Path(f"{path}.label.json").write_text(json.dumps(artifact.label), encoding="utf-8")


def check_sha256(artifact: Artifact | str, data: bytes, path: Path) -> None:
    """An Artifact's bytes must match its sha256 before anything is written."""
    if isinstance(artifact, Artifact) and hashlib.sha256(data).hexdigest() != artifact.sha256:
        raise ChecksumMismatch(f"artifact {artifact.id}: checksum mismatch; {path} not written")
