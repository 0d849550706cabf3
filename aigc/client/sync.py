"""`Client`: the API from synchronous Python code."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from aigc.client import _core
from aigc.client.errors import ApiError
from aigc.client.events import Event, follow
from aigc.client.models import Artifact, Batch, Job, Provenance, ResultLine, ResultsFormat


class Client:
    """A client of the aigc-jobs API.

    base_url and api_key default to AIGC_API_URL and AIGC_API_KEY. Answers of 429 and 503
    are retried up to max_retries times, waiting what Retry-After says (else exponential
    backoff with jitter); so are connection failures of reads and of submits, which carry
    an Idempotency-Key so that a retried submit never creates a second job."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        max_retries: int = 4,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = _core.Config.make(base_url, api_key, timeout_s, max_retries)
        self.http = httpx.Client(
            base_url=self.config.base_url,
            headers=self.config.headers(),
            timeout=timeout_s,
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def __repr__(self) -> str:
        return f"Client(base_url={self.config.base_url!r})"  # never the key

    # The one place requests are sent ------------------------------------------------------

    def request(
        self, method: str, url: str, *, retry_connect: bool | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send a request, retrying 429/503 (and, for GET or where retry_connect says so,
        connection failures); a typed ApiError for an error answer."""
        if retry_connect is None:
            retry_connect = method == "GET"
        attempt = 0
        while True:
            request = self.http.build_request(method, url, **kwargs)
            if not self.config.same_origin(url):
                request.headers.pop("Authorization", None)  # a presigned URL authorises itself
            try:
                response = self.http.send(request)
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
                if not retry_connect or attempt >= self.config.max_retries:
                    raise
                time.sleep(_core.backoff_s(attempt, None) or 0.0)
            else:
                delay = _core.backoff_s(attempt, response)
                if delay is None or attempt >= self.config.max_retries:
                    return _core.checked(response)
                time.sleep(delay)
            attempt += 1

    def _submit(self, path: str, idempotency_key: str | None, **kwargs: Any) -> Any:
        key = idempotency_key or str(uuid.uuid4())  # the same for each of its retries
        headers = {**kwargs.pop("headers", {}), "Idempotency-Key": key}
        return self.request("POST", path, retry_connect=True, headers=headers, **kwargs).json()

    # Jobs ---------------------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        prompt: str,
        *,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        priority: str | None = None,
        webhook: str | None = None,
        idempotency_key: str | None = None,
        cache: bool = False,
    ) -> Job:
        """Queue one job. Pass your own idempotency_key to make a resubmission (after a
        crash, say) return the first job instead of a new one. With `cache=True` (and
        `params["seed"]`), an identical earlier job's result comes back at once as a new
        job with `cache_hit` true."""
        body = _core.job_body(
            kind,
            prompt,
            model=model,
            params=params,
            metadata=metadata,
            priority=priority,
            webhook=webhook,
            cache=cache,
        )
        return Job.model_validate(self._submit("/v1/jobs", idempotency_key, json=body))

    def get(self, job_id: str) -> Job:
        return Job.model_validate(self.request("GET", f"/v1/jobs/{job_id}").json())

    def list(
        self, *, status: str | None = None, kind: str | None = None, page_size: int = 100
    ) -> Iterator[Job]:
        """The team's jobs, newest first, fetching page after page as you iterate."""
        params: dict[str, Any] = {"limit": page_size}
        params.update({k: v for k, v in {"status": status, "kind": kind}.items() if v})
        while True:
            page = self.request("GET", "/v1/jobs", params=params).json()
            yield from (Job.model_validate(job) for job in page["data"])
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def cancel(self, job_id: str) -> Job:
        return Job.model_validate(self.request("POST", f"/v1/jobs/{job_id}/cancel").json())

    def retry(self, job_id: str) -> Job:
        """Run a failed or canceled job again."""
        return Job.model_validate(self.request("POST", f"/v1/jobs/{job_id}/retry").json())

    def job_events(self, job_id: str) -> Iterator[Event]:
        """The job's event stream: (name, data) until it finishes."""
        return follow(self.http, f"/v1/jobs/{job_id}/events")

    def wait(self, job_id: str, *, timeout_s: float = 600.0) -> Job:
        """The job once it has finished, following its event stream (polling a server
        that has none); TimeoutError after timeout_s."""
        deadline = time.monotonic() + timeout_s
        return Job.model_validate(
            self._wait(f"/v1/jobs/{job_id}", deadline, lambda: self.get(job_id).done)
        )

    # Batches ------------------------------------------------------------------------------

    def submit_batch(
        self,
        jobs: _core.BatchSource,
        *,
        priority: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        webhook: str | None = None,
        webhook_events: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Batch:
        """Queue a batch from a list of job dicts, a .jsonl file, a .csv file (see
        aigc.tabular) or JSONL bytes. A bad CSV row raises ValueError before any request."""
        kwargs = _core.batch_request(
            jobs,
            priority=priority,
            metadata=metadata,
            webhook=webhook,
            webhook_events=webhook_events,
        )
        return Batch.model_validate(self._submit("/v1/batches", idempotency_key, **kwargs))

    def get_batch(self, batch_id: str) -> Batch:
        return Batch.model_validate(self.request("GET", f"/v1/batches/{batch_id}").json())

    def list_batches(self, *, page_size: int = 100) -> Iterator[Batch]:
        """The team's batches, newest first, page after page."""
        params: dict[str, Any] = {"limit": page_size}
        while True:
            page = self.request("GET", "/v1/batches", params=params).json()
            # OpenAI-shaped batches (from /v1/files uploads) are listed too; only ours here.
            yield from (Batch.model_validate(b) for b in page["data"] if "counts" in b)
            if not page.get("has_more"):
                return
            params["after"] = page["last_id"]

    def batch_jobs(
        self, batch_id: str, *, status: str | None = None, page_size: int = 100
    ) -> Iterator[Job]:
        """The batch's jobs in input order, optionally only those in one status."""
        params: dict[str, Any] = {"limit": page_size}
        if status:
            params["status"] = status
        while True:
            page = self.request("GET", f"/v1/batches/{batch_id}/jobs", params=params).json()
            yield from (Job.model_validate(job) for job in page["data"])
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def cancel_batch(self, batch_id: str) -> Batch:
        return Batch.model_validate(self.request("POST", f"/v1/batches/{batch_id}/cancel").json())

    def retry_batch(self, batch_id: str, *, include_canceled: bool = False) -> Batch:
        params = {"include_canceled": "true"} if include_canceled else None
        return Batch.model_validate(
            self.request("POST", f"/v1/batches/{batch_id}/retry", params=params).json()
        )

    def batch_events(self, batch_id: str) -> Iterator[Event]:
        return follow(self.http, f"/v1/batches/{batch_id}/events")

    def wait_batch(self, batch_id: str, *, timeout_s: float = 3600.0) -> Batch:
        deadline = time.monotonic() + timeout_s
        return Batch.model_validate(
            self._wait(f"/v1/batches/{batch_id}", deadline, lambda: self.get_batch(batch_id).done)
        )

    def batch_results(self, batch_id: str) -> Iterator[ResultLine]:
        """The batch's results, one typed line per job in input order."""
        for line in self.batch_results_raw(batch_id):
            yield ResultLine.model_validate_json(line)

    def batch_results_raw(self, batch_id: str) -> Iterator[str]:
        """The results JSONL as the server sends it, line by line (to store it as it is)."""
        with self.http.stream("GET", f"/v1/batches/{batch_id}/results") as response:
            if not response.is_success:
                response.read()
                _core.checked(response)
            for text in response.iter_lines():
                if text.strip():
                    yield text

    def download_batch_results(
        self, batch_id: str, path: str | Path, *, format: ResultsFormat = "jsonl"
    ) -> Path:
        """Write the batch's results to `path` as the server sends them, streamed: JSONL,
        or with `format="csv"` a CSV a spreadsheet opens (one row per artifact)."""
        path = Path(path)
        params = {"format": format}
        with self.http.stream("GET", f"/v1/batches/{batch_id}/results", params=params) as response:
            if not response.is_success:
                response.read()
                _core.checked(response)
            with path.open("wb") as f:
                for chunk in response.iter_bytes():
                    f.write(chunk)
        return path

    # Artifacts ----------------------------------------------------------------------------

    def download(self, artifact: Artifact | str, path: str | Path) -> Path:
        """Write an artifact (or the bytes at a URL) to `path`; an Artifact's sha256 is
        checked first, and a mismatch raises ValueError with nothing written. A text
        artifact's label goes beside it, as PATH.label.json."""
        path = Path(path)
        if isinstance(artifact, Artifact) and artifact.text is not None:
            data = artifact.text.encode("utf-8")
        else:
            url = artifact.url if isinstance(artifact, Artifact) else artifact
            data = self.request("GET", url).content
        _core.check_sha256(artifact, data, path)
        path.write_bytes(data)
        _core.write_label_sidecar(artifact, path)
        return path

    def provenance(self, artifact: Artifact | str) -> Provenance:
        """Where an artifact (or artifact id) came from: model and weights hash, prompt,
        params and seed, team, key, batch line, worker and timings."""
        artifact_id = artifact.id if isinstance(artifact, Artifact) else artifact
        path = f"/v1/artifacts/{artifact_id}/provenance"
        return Provenance.model_validate(self.request("GET", path).json())

    def healthy(self) -> bool:
        """Whether an API answers at base_url."""
        try:
            return self.http.get("/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    # Waiting ------------------------------------------------------------------------------

    def _wait(self, path: str, deadline: float, finished: Callable[[], bool]) -> Any:
        """The object at `path` once final: its event stream's `completed` event where the
        server has streams, else polling."""
        try:
            for name, data in follow(self.http, f"{path}/events", deadline=deadline):
                if name == "completed":
                    return data
            # The stream ended without its last event (the server went away): look.
            return self.request("GET", path).json()
        except ApiError as exc:
            if exc.status not in _core.NO_STREAM_STATUSES:
                raise
            self.request("GET", path)  # an unknown id raises its own NotFound here
        while time.monotonic() < deadline:
            if finished():
                return self.request("GET", path).json()
            time.sleep(_core.POLL_INTERVAL_S)
        raise TimeoutError(f"{path} did not finish in time")
