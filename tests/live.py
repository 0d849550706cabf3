"""Helpers for tests that drive real API and worker processes over HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx

FINAL = {"succeeded", "failed", "canceled"}


def wait_for_job(
    client: httpx.Client, job_id: str, timeout_s: float = 120.0, until: set[str] = FINAL
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] in until:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {timeout_s}s")
        time.sleep(0.1)


def submit(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]
