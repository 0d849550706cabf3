"""A worker's heartbeat: one thread per worker process that renews the leases of the jobs
it is running, so the dispatcher can tell a slow job from a dead worker, and enforces the
hard time limit."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from aigc.errors import ErrorCode
from db.job_store import JobStore

log = logging.getLogger(__name__)

HARD_LIMIT_EXIT_CODE = 70  # a supervisor restarts the worker; the jobs are already failed


class Heartbeat:
    """Renews the held runs' leases every third of the lease. If runs are still held past
    their hard deadline (a step that never returns), fails them with `timeout` and exits the
    process, since a stuck GPU kernel cannot be interrupted from Python."""

    def __init__(self, jobs: JobStore, worker: str, lease_s: float) -> None:
        self.jobs = jobs
        self.worker = worker
        self.lease_s = lease_s
        self._held: dict[uuid.UUID, int] = {}
        self._hard_deadline = float("inf")
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def holding(self, runs: Mapping[uuid.UUID, int], hard_deadline: float) -> Iterator[None]:
        """Keep these runs' leases alive while the block runs."""
        with self._lock:
            self._held = dict(runs)
            self._hard_deadline = hard_deadline
            if self._thread is None:
                # Started on first use, in the process that runs jobs (never before a fork).
                self._thread = threading.Thread(
                    target=self._beat, name="aigc-heartbeat", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held = {}
                self._hard_deadline = float("inf")

    def _beat(self) -> None:
        while True:
            time.sleep(self.lease_s / 3)
            with self._lock:
                runs, hard_deadline = dict(self._held), self._hard_deadline
            if not runs:
                continue
            if time.monotonic() > hard_deadline:
                self._fail_and_exit(runs)
            try:
                self.jobs.renew_leases(runs, worker=self.worker, lease_s=self.lease_s)
            except Exception as exc:
                # A missed beat is survivable: the lease is three beats long.
                log.warning("lease renewal failed: %s", exc)

    def _fail_and_exit(self, runs: Mapping[uuid.UUID, int]) -> None:
        log.error("jobs %s passed their hard time limit; exiting", list(runs))
        try:
            for job_id, attempt in runs.items():
                self.jobs.fail(
                    job_id,
                    worker=self.worker,
                    attempt=attempt,
                    error_code=ErrorCode.TIMEOUT,
                    error_message="the job passed its hard time limit",
                )
        finally:
            os._exit(HARD_LIMIT_EXIT_CODE)
