"""The metrics of the processes in workers/: what a worker ran (outcomes, run and wait time,
chunk size, model loads, busy time, GPU memory) and what waits (the dispatcher's queue depth
and oldest queued age, read from PostgreSQL at scrape time).

A worker runs the solo pool, one process with no children, so its metrics live in the
process's default registry and its own small HTTP server serves them
(AIGC_WORKER_METRICS_PORT); the dispatcher's likewise (AIGC_DISPATCHER_METRICS_PORT)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from aigc.metrics import SECONDS_BUCKETS, serve_metrics
from aigc.settings import Settings
from aigc.vocab import JobStatus
from db.jobs import ClaimedJob
from db.metrics import active_jobs

log = logging.getLogger(__name__)

# The outcome of a run sent back to the queue for another attempt (not a job status).
REQUEUED = "requeued"
# Jobs per chunk: 1 for single jobs, up to the largest chunk_sizes entry (echo's 128).
CHUNK_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

JOBS_FINISHED = Counter(
    "aigc_jobs_finished_total",
    "Jobs this worker finished, by kind, model and final status (succeeded, failed, "
    "canceled); `requeued` counts runs sent back to the queue for another attempt.",
    ["kind", "model", "status"],
)
JOB_RUN_SECONDS = Histogram(
    "aigc_job_run_seconds",
    "Seconds from a job's claim to its outcome (a chunk's jobs share the chunk's time).",
    ["kind", "model"],
    buckets=SECONDS_BUCKETS,
)
JOB_WAIT_SECONDS = Histogram(
    "aigc_job_wait_seconds",
    "Seconds a job waited queued before a worker claimed it (on the database's clock).",
    ["kind", "model"],
    buckets=SECONDS_BUCKETS,
)
CHUNK_JOBS = Histogram(
    "aigc_chunk_jobs",
    "Jobs per chunk a worker claimed (run as one batched generation).",
    ["kind"],
    buckets=CHUNK_BUCKETS,
)
MODEL_LOAD_SECONDS = Histogram(
    "aigc_model_load_seconds",
    "Seconds a worker took to load a model and warm it up.",
    ["model"],
    buckets=SECONDS_BUCKETS,
)
WORKER_SERVING = Gauge(
    "aigc_worker_serving",
    "1 for each kind whose queues this worker consumes: a kind with jobs queued and no "
    "worker serving it waits forever.",
    ["kind"],
)

DISPATCHED_JOBS = Counter(
    "aigc_dispatched_jobs_total",
    "Jobs the dispatcher sent from PostgreSQL to the broker, by kind.",
    ["kind"],
)
JOBS_RETURNED = Counter(
    "aigc_jobs_returned_total",
    "Jobs the dispatcher put back to wait: `lease_expired` (their worker died) or "
    "`broker_lost` (the broker no longer held their message).",
    ["reason"],
)

JOBS_BLOCKED = Counter(
    "aigc_jobs_blocked_total",
    "Jobs moderation refused, by team and reason code: at input (the dispatcher, before any "
    "GPU time) or at output (a worker, before a generated text is stored).",
    ["team", "reason"],
)


class BusyClock(Collector):
    """Seconds this worker spent running chunks, the one running now included, so that
    rate(aigc_worker_busy_seconds_total[5m]) is the busy ratio even during a long job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done_s = 0.0
        self._since: float | None = None

    @contextmanager
    def running(self) -> Iterator[None]:
        with self._lock:
            self._since = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                if self._since is not None:
                    self._done_s += time.monotonic() - self._since
                self._since = None

    def in_run_s(self) -> float:
        """Seconds since the current chunk started (0 between chunks)."""
        since = self._since
        return 0.0 if since is None else time.monotonic() - since

    def describe(self) -> Iterable[Metric]:
        return []  # no scrape at registration

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            busy = self._since is not None
            total = self._done_s + (time.monotonic() - self._since if self._since else 0.0)
        yield CounterMetricFamily(
            "aigc_worker_busy_seconds", "Seconds this worker spent running jobs.", value=total
        )
        yield GaugeMetricFamily(
            "aigc_worker_busy", "1 while this worker runs a chunk, else 0.", value=int(busy)
        )


BUSY = BusyClock()


def chunk_claimed(jobs: Sequence[ClaimedJob]) -> None:
    if not jobs:
        return
    CHUNK_JOBS.labels(jobs[0].kind).observe(len(jobs))
    for job in jobs:
        JOB_WAIT_SECONDS.labels(job.kind, job.model).observe(job.waited_s)


def job_finished(job: ClaimedJob, status: str) -> None:
    """Count a run's outcome; final ones also observe the run time."""
    JOBS_FINISHED.labels(job.kind, job.model, status).inc()
    if status != REQUEUED:
        JOB_RUN_SECONDS.labels(job.kind, job.model).observe(BUSY.in_run_s())


class GpuMemory(Collector):
    """Device memory PyTorch holds, per CUDA device, read at scrape time. Reported only
    once this process has started CUDA itself: a scrape never imports torch or creates a
    CUDA context (which would take memory on every device, or break a later fork)."""

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        torch = sys.modules.get("torch")
        if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return
        used = GaugeMetricFamily(
            "aigc_gpu_memory_used_bytes",
            "Bytes of device memory this process's tensors occupy.",
            labels=["device"],
        )
        peak = GaugeMetricFamily(
            "aigc_gpu_memory_peak_bytes",
            "Most bytes of device memory this process's tensors occupied since it started.",
            labels=["device"],
        )
        reserved = GaugeMetricFamily(
            "aigc_gpu_memory_reserved_bytes",
            "Bytes of device memory PyTorch's caching allocator holds for this process.",
            labels=["device"],
        )
        total = GaugeMetricFamily(
            "aigc_gpu_memory_total_bytes", "Bytes of memory the device has.", labels=["device"]
        )
        for index in range(torch.cuda.device_count()):
            device = [str(index)]
            used.add_metric(device, torch.cuda.memory_allocated(index))
            peak.add_metric(device, torch.cuda.max_memory_allocated(index))
            reserved.add_metric(device, torch.cuda.memory_reserved(index))
            total.add_metric(device, torch.cuda.get_device_properties(index).total_memory)
        yield from (used, peak, reserved, total)


def serve_worker_metrics(settings: Settings, kinds: Sequence[str]) -> None:
    """Start the worker's metrics server, when AIGC_WORKER_METRICS_PORT is set."""
    if not settings.worker_metrics_port:
        return
    for kind in kinds:
        WORKER_SERVING.labels(kind).set(1)
    REGISTRY.register(BUSY)
    REGISTRY.register(GpuMemory())
    serve_metrics(
        settings.worker_metrics_port, host=settings.metrics_host, token=settings.metrics_token
    )


class QueueCollector(Collector):
    """Queue depth, oldest queued age and active jobs per kind, tier and team, from one
    query at scrape time. Only the leading dispatcher reports them: replicas standing by
    would otherwise double every sum."""

    def __init__(
        self, session_factory: sessionmaker[Session], is_leader: Callable[[], bool]
    ) -> None:
        self._session_factory = session_factory
        self._is_leader = is_leader

    def describe(self) -> Iterable[Metric]:
        return []  # no query at registration

    def collect(self) -> Iterable[Metric]:
        leading = self._is_leader()
        yield GaugeMetricFamily(
            "aigc_dispatcher_leader",
            "1 when this dispatcher leads (and reports the queues), else 0.",
            value=int(leading),
        )
        if not leading:
            return
        try:
            with self._session_factory() as session:
                groups = active_jobs(session)
        except SQLAlchemyError as exc:
            # No queue series this scrape: absent, not zero, so no alert sees a false calm.
            log.warning("could not read the queues for /metrics: %s", exc)
            return
        labels = ["kind", "priority", "team"]
        depth = GaugeMetricFamily(
            "aigc_queue_depth",
            "Jobs queued (waiting in PostgreSQL or in the broker), by kind, tier and team.",
            labels=labels,
        )
        oldest = GaugeMetricFamily(
            "aigc_queue_oldest_age_seconds",
            "Seconds the longest-waiting queued job has waited, by kind, tier and team.",
            labels=labels,
        )
        active = GaugeMetricFamily(
            "aigc_jobs_active",
            "Jobs queued or running, by kind, tier, team and status.",
            labels=[*labels, "status"],
        )
        for group in groups:
            key = [group.kind, group.priority, group.team]
            active.add_metric([*key, group.status], group.jobs)
            if group.status == JobStatus.QUEUED:
                depth.add_metric(key, group.jobs)
                oldest.add_metric(key, group.oldest_s)
        yield from (depth, oldest, active)


def serve_dispatcher_metrics(
    settings: Settings, session_factory: sessionmaker[Session], is_leader: Callable[[], bool]
) -> None:
    """Start the dispatcher's metrics server, when AIGC_DISPATCHER_METRICS_PORT is set."""
    if not settings.dispatcher_metrics_port:
        return
    REGISTRY.register(QueueCollector(session_factory, is_leader))
    serve_metrics(
        settings.dispatcher_metrics_port, host=settings.metrics_host, token=settings.metrics_token
    )
