"""`AsyncClient`: the API from asyncio code, with the same methods as `Client`."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from aigc.client import _core
from aigc.client.errors import ApiError
from aigc.client.events import Event, afollow
from aigc.client.models import Artifact, Batch, Job, Provenance, ResultLine, ResultsFormat


class AsyncClient:
    """`Client` for asyncio: the same arguments, retries and Idempotency-Keys."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        max_retries: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = _core.Config.make(base_url, api_key, timeout_s, max_retries)
        self.http = httpx.AsyncClient(
            base_url=self.config.base_url,
            headers=self.config.headers(),
            timeout=timeout_s,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.config.base_url!r})"  # never the key

    async def request(
        self, method: str, url: str, *, retry_connect: bool | None = None, **kwargs: Any
    ) -> httpx.Response:
        """As Client.request."""
        if retry_connect is None:
            retry_connect = method == "GET"
        attempt = 0
        while True:
            request = self.http.build_request(method, url, **kwargs)
            if not self.config.same_origin(url):
                request.headers.pop("Authorization", None)
            try:
                response = await self.http.send(request)
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
                if not retry_connect or attempt >= self.config.max_retries:
                    raise
                await asyncio.sleep(_core.backoff_s(attempt, None) or 0.0)
            else:
                delay = _core.backoff_s(attempt, response)
                if delay is None or attempt >= self.config.max_retries:
                    return _core.checked(response)
                await asyncio.sleep(delay)
            attempt += 1

    async def _submit(self, path: str, idempotency_key: str | None, **kwargs: Any) -> Any:
        key = idempotency_key or str(uuid.uuid4())
        headers = {**kwargs.pop("headers", {}), "Idempotency-Key": key}
        response = await self.request("POST", path, retry_connect=True, headers=headers, **kwargs)
        return response.json()

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.request(method, path, **kwargs)).json()

    # Jobs ---------------------------------------------------------------------------------

    async def submit(
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
        return Job.model_validate(await self._submit("/v1/jobs", idempotency_key, json=body))

    async def get(self, job_id: str) -> Job:
        return Job.model_validate(await self._json("GET", f"/v1/jobs/{job_id}"))

    async def list(
        self, *, status: str | None = None, kind: str | None = None, page_size: int = 100
    ) -> AsyncIterator[Job]:
        params: dict[str, Any] = {"limit": page_size}
        params.update({k: v for k, v in {"status": status, "kind": kind}.items() if v})
        while True:
            page = await self._json("GET", "/v1/jobs", params=params)
            for job in page["data"]:
                yield Job.model_validate(job)
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    async def cancel(self, job_id: str) -> Job:
        return Job.model_validate(await self._json("POST", f"/v1/jobs/{job_id}/cancel"))

    async def retry(self, job_id: str) -> Job:
        return Job.model_validate(await self._json("POST", f"/v1/jobs/{job_id}/retry"))

    def job_events(self, job_id: str) -> AsyncIterator[Event]:
        return afollow(self.http, f"/v1/jobs/{job_id}/events")

    async def wait(self, job_id: str, *, timeout_s: float = 600.0) -> Job:
        async def finished() -> bool:
            return (await self.get(job_id)).done

        deadline = time.monotonic() + timeout_s
        return Job.model_validate(await self._wait(f"/v1/jobs/{job_id}", deadline, finished))

    # Batches ------------------------------------------------------------------------------

    async def submit_batch(
        self,
        jobs: _core.BatchSource,
        *,
        priority: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        webhook: str | None = None,
        webhook_events: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Batch:
        kwargs = _core.batch_request(
            jobs,
            priority=priority,
            metadata=metadata,
            webhook=webhook,
            webhook_events=webhook_events,
        )
        return Batch.model_validate(await self._submit("/v1/batches", idempotency_key, **kwargs))

    async def get_batch(self, batch_id: str) -> Batch:
        return Batch.model_validate(await self._json("GET", f"/v1/batches/{batch_id}"))

    async def batch_jobs(
        self, batch_id: str, *, status: str | None = None, page_size: int = 100
    ) -> AsyncIterator[Job]:
        params: dict[str, Any] = {"limit": page_size}
        if status:
            params["status"] = status
        while True:
            page = await self._json("GET", f"/v1/batches/{batch_id}/jobs", params=params)
            for job in page["data"]:
                yield Job.model_validate(job)
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    async def cancel_batch(self, batch_id: str) -> Batch:
        return Batch.model_validate(await self._json("POST", f"/v1/batches/{batch_id}/cancel"))

    async def list_batches(self, *, page_size: int = 100) -> AsyncIterator[Batch]:
        params: dict[str, Any] = {"limit": page_size}
        while True:
            page = await self._json("GET", "/v1/batches", params=params)
            for batch in page["data"]:
                if "counts" in batch:  # ours, not OpenAI-shaped ones
                    yield Batch.model_validate(batch)
            if not page.get("has_more"):
                return
            params["after"] = page["last_id"]

    async def retry_batch(self, batch_id: str, *, include_canceled: bool = False) -> Batch:
        params = {"include_canceled": "true"} if include_canceled else None
        return Batch.model_validate(
            await self._json("POST", f"/v1/batches/{batch_id}/retry", params=params)
        )

    def batch_events(self, batch_id: str) -> AsyncIterator[Event]:
        return afollow(self.http, f"/v1/batches/{batch_id}/events")

    async def wait_batch(self, batch_id: str, *, timeout_s: float = 3600.0) -> Batch:
        async def finished() -> bool:
            return (await self.get_batch(batch_id)).done

        deadline = time.monotonic() + timeout_s
        return Batch.model_validate(await self._wait(f"/v1/batches/{batch_id}", deadline, finished))

    async def batch_results(self, batch_id: str) -> AsyncIterator[ResultLine]:
        async with self.http.stream("GET", f"/v1/batches/{batch_id}/results") as response:
            if not response.is_success:
                await response.aread()
                _core.checked(response)
            async for text in response.aiter_lines():
                if text.strip():
                    yield ResultLine.model_validate_json(text)

    async def download_batch_results(
        self, batch_id: str, path: str | Path, *, format: ResultsFormat = "jsonl"
    ) -> Path:
        """As Client.download_batch_results."""
        path = Path(path)
        params = {"format": format}
        url = f"/v1/batches/{batch_id}/results"
        async with self.http.stream("GET", url, params=params) as response:
            if not response.is_success:
                await response.aread()
                _core.checked(response)
            with path.open("wb") as f:
                async for chunk in response.aiter_bytes():
                    f.write(chunk)
        return path

    # Artifacts ----------------------------------------------------------------------------

    async def download(self, artifact: Artifact | str, path: str | Path) -> Path:
        """As Client.download."""
        path = Path(path)
        if isinstance(artifact, Artifact) and artifact.text is not None:
            data = artifact.text.encode("utf-8")
        else:
            url = artifact.url if isinstance(artifact, Artifact) else artifact
            data = (await self.request("GET", url)).content
        _core.check_sha256(artifact, data, path)
        path.write_bytes(data)
        _core.write_label_sidecar(artifact, path)
        return path

    async def provenance(self, artifact: Artifact | str) -> Provenance:
        """As Client.provenance."""
        artifact_id = artifact.id if isinstance(artifact, Artifact) else artifact
        path = f"/v1/artifacts/{artifact_id}/provenance"
        return Provenance.model_validate((await self.request("GET", path)).json())

    async def _wait(
        self, path: str, deadline: float, finished: Callable[[], Awaitable[bool]]
    ) -> Any:
        try:
            async for name, data in afollow(self.http, f"{path}/events", deadline=deadline):
                if name == "completed":
                    return data
            return await self._json("GET", path)
        except ApiError as exc:
            if exc.status not in _core.NO_STREAM_STATUSES:
                raise
            await self.request("GET", path)  # an unknown id raises its own NotFound here
        while time.monotonic() < deadline:
            if await finished():
                return await self._json("GET", path)
            await asyncio.sleep(_core.POLL_INTERVAL_S)
        raise TimeoutError(f"{path} did not finish in time")
