"""Keeping Flower's view of a busy worker true.

A worker runs the solo pool, so while it generates its event loop is blocked: Celery's own
heartbeat timer does not fire and task events wait in a buffer until the job is over. Flower
then shows the busy worker as Offline (no heartbeat for two intervals) with no active task.
This consumer bootstep publishes task events as they happen and, while a task runs, sends
`worker-heartbeat` events under the worker's own hostname from a thread on a connection of
its own (a kombu connection is not shared between threads).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import bootsteps
from celery.utils.sysinfo import load_average
from celery.worker.state import SOFTWARE_INFO, active_requests, all_total_count

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_S = 2.0  # Celery's own worker heartbeat interval


class BusyWorkerEvents(bootsteps.StartStopStep):  # type: ignore[misc]
    """Task events sent at once, and heartbeats from a thread while a task runs."""

    requires = ("celery.worker.consumer.events:Events",)

    def __init__(self, c: Any, heartbeat_interval: float | None = None, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self.interval = float(heartbeat_interval or DEFAULT_HEARTBEAT_S)
        self._stop: threading.Event | None = None

    def start(self, c: Any) -> None:
        dispatcher = c.event_dispatcher
        if dispatcher is None or not dispatcher.enabled:
            return
        # Celery buffers task events until the event loop runs again, which with the solo
        # pool is after the job; unbuffered, "task-started" reaches Flower when it starts.
        dispatcher.buffer_group = frozenset()
        self._stop = threading.Event()
        threading.Thread(
            target=self._beat,
            args=(c.app, c.hostname, self._stop),
            name="busy-heartbeat",
            daemon=True,
        ).start()

    def stop(self, c: Any) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None

    shutdown = stop

    def _beat(self, app: Any, hostname: str, stop: threading.Event) -> None:
        failing = False
        with app.connection_for_write() as connection:
            dispatcher = app.events.Dispatcher(connection, hostname=hostname, groups=["worker"])
            while not stop.wait(self.interval):
                # While no task runs, the event loop is free and Celery's own timer beats.
                if not active_requests:
                    continue
                try:
                    dispatcher.send(
                        "worker-heartbeat",
                        freq=self.interval,
                        active=len(active_requests),
                        processed=all_total_count[0],
                        loadavg=load_average(),
                        **SOFTWARE_INFO,
                    )
                    failing = False
                except Exception as exc:
                    # The broker is down; Celery's consumer reconnects, and so do we.
                    if not failing:
                        log.warning("could not send a heartbeat event: %s", exc)
                    failing = True
            dispatcher.close()
