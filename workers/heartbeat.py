"""A worker's heartbeat: renews the leases of the jobs it runs, so the dispatcher can tell
a slow job from a dead worker, and enforces the hard time limit."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from types import TracebackType

from db import jobs as job_queries
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)

HARD_LIMIT_EXIT_CODE = 70  # a supervisor restarts the worker; the jobs are already failed


class Heartbeat:
    """While active, renews the runs' leases every third of the lease; if the runs are
    still going past `hard_deadline` (a step that never returns), fails them with `timeout`
    and exits the process, since a stuck GPU kernel cannot be interrupted from Python."""

    def __init__(
        self, runtime: WorkerRuntime, runs: Mapping[uuid.UUID, int], hard_deadline: float
    ) -> None:
        self.runtime = runtime
        self.runs = dict(runs)
        self.hard_deadline = hard_deadline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="aigc-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        interval = self.runtime.settings.lease_s / 3
        while not self._stop.wait(interval):
            if time.monotonic() > self.hard_deadline:
                self._fail_and_exit()
            try:
                with self.runtime.session_factory.begin() as session:
                    job_queries.renew_leases(
                        session,
                        self.runs,
                        worker=self.runtime.worker_name,
                        lease_s=self.runtime.settings.lease_s,
                    )
            except Exception as exc:
                # A missed beat is survivable: the lease is three beats long.
                log.warning("lease renewal failed: %s", exc)

    def _fail_and_exit(self) -> None:
        log.error("jobs %s passed their hard time limit; exiting", list(self.runs))
        try:
            with self.runtime.session_factory.begin() as session:
                for job_id, attempt in self.runs.items():
                    job_queries.fail_job(
                        session,
                        job_id,
                        worker=self.runtime.worker_name,
                        attempt=attempt,
                        error_type="timeout",
                        error_message="the job passed its hard time limit",
                    )
        finally:
            os._exit(HARD_LIMIT_EXIT_CODE)
