"""The worker's job metrics for every way a run ends, driven through workers.execution with
the unit tier's in-memory jobs table and generator (tests/unit/fakes.py): the counts a
worker's /metrics would show, read from the process's registry."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from tests.unit.fakes import FakeGenerator, FakeJobStore, OutOfMemoryError, make_runtime
from workers import execution
from workers.execution import execute_jobs
from workers.metrics import BUSY

ECHO = {"kind": "text", "model": "echo"}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def finished(status: str) -> float:
    return sample("aigc_jobs_finished_total", status=status, **ECHO)


def test_a_chunk_with_a_bad_job_counts_each_outcome_and_its_size(tmp_path: Path) -> None:
    before = {s: finished(s) for s in ("succeeded", "failed")}
    runs_before = sample("aigc_job_run_seconds_count", **ECHO)
    waits_before = sample("aigc_job_wait_seconds_count", **ECHO)
    chunks_before = sample("aigc_chunk_jobs_count", kind="text")
    sizes_before = sample("aigc_chunk_jobs_sum", kind="text")
    jobs = FakeJobStore()
    ids = [jobs.add(p, max_new_tokens=2) for p in ("a", "bad", "c", "d")]
    generator = FakeGenerator(fail=lambda ps: ValueError("boom") if "bad" in ps else None)

    assert execute_jobs(make_runtime(tmp_path, jobs, generator), ids) == {
        "succeeded": 3,
        "failed": 1,
    }

    assert finished("succeeded") - before["succeeded"] == 3
    assert finished("failed") - before["failed"] == 1
    assert sample("aigc_job_run_seconds_count", **ECHO) - runs_before == 4
    assert sample("aigc_job_wait_seconds_count", **ECHO) - waits_before == 4
    # One chunk of four claimed, however it was split to run.
    assert sample("aigc_chunk_jobs_count", kind="text") - chunks_before == 1
    assert sample("aigc_chunk_jobs_sum", kind="text") - sizes_before == 4


def test_a_run_sent_back_to_the_queue_counts_as_requeued(tmp_path: Path) -> None:
    before = finished("requeued")
    runs_before = sample("aigc_job_run_seconds_count", **ECHO)
    jobs = FakeJobStore()
    job_id = jobs.add("huge")
    generator = FakeGenerator(fail=lambda ps: OutOfMemoryError("CUDA out of memory"))
    runtime = make_runtime(tmp_path, jobs, generator, max_attempts=2)
    assert execute_jobs(runtime, [job_id]) == {"queued": 1}
    assert finished("requeued") - before == 1
    # Not an outcome of the job: its run time is counted when it ends.
    assert sample("aigc_job_run_seconds_count", **ECHO) == runs_before


def test_a_canceled_run_counts_as_canceled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execution, "STOP_CHECK_INTERVAL_S", 0.0)
    before = finished("canceled")
    jobs = FakeJobStore()
    job_id = jobs.add("long", max_new_tokens=100)
    generator = FakeGenerator(on_step=lambda step: jobs.cancel(job_id) if step == 3 else None)
    assert execute_jobs(make_runtime(tmp_path, jobs, generator), [job_id]) == {"canceled": 1}
    assert finished("canceled") - before == 1


def test_busy_time_grows_while_a_chunk_runs(tmp_path: Path) -> None:
    def busy() -> float:
        (family, flag) = BUSY.collect()
        assert flag.samples[0].value == (1 if BUSY.in_run_s() else 0)
        return float(family.samples[0].value)

    jobs = FakeJobStore()
    job_id = jobs.add("slow", max_new_tokens=20)
    seen: list[float] = []

    def on_step(step: int) -> None:
        time.sleep(0.01)
        if step == 10:
            seen.append(busy())  # mid-run: the running chunk already counts

    start = busy()
    execute_jobs(make_runtime(tmp_path, jobs, FakeGenerator(on_step=on_step)), [job_id])
    end = busy()
    assert start < seen[0] < end
    assert end - start >= 0.15  # 20 steps of 10 ms
