"""workers/execution driven without services: a fake jobs table and a fake generator."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from aigc.vocab import JobStatus
from models.errors import InvalidInput
from tests.unit.fakes import (
    FakeGenerator,
    FakeJobStore,
    FakeModels,
    OutOfMemoryError,
    make_runtime,
    stored_files,
)
from workers import execution
from workers.execution import execute_jobs


def test_a_chunk_runs_as_one_batch_and_each_job_gets_its_artifact(tmp_path: Path) -> None:
    jobs = FakeJobStore()
    ids = [jobs.add(p, max_new_tokens=3) for p in ("a", "b", "c")]
    generator = FakeGenerator()
    outcome = execute_jobs(make_runtime(tmp_path, jobs, generator), ids)
    assert outcome == {"succeeded": 3}
    assert generator.batches == [["a", "b", "c"]]
    assert jobs.statuses() == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
    assert all(len(job.artifacts) == 1 for job in jobs.jobs.values())
    # Each text artifact and its label sidecar, naming the artifact's id.
    files = stored_files(tmp_path)
    assert len(files) == 6
    for job in jobs.jobs.values():
        [artifact] = job.artifacts
        sidecar = tmp_path / "artifacts" / (artifact.storage_key + ".label.json")
        assert json.loads(sidecar.read_bytes())["content_id"] == str(artifact.id)


def test_a_job_that_breaks_its_chunk_fails_alone(tmp_path: Path) -> None:
    jobs = FakeJobStore()
    ids = [jobs.add(p, max_new_tokens=2) for p in ("a", "bad", "c", "d")]
    generator = FakeGenerator(fail=lambda ps: ValueError("boom") if "bad" in ps else None)
    outcome = execute_jobs(make_runtime(tmp_path, jobs, generator), ids)
    # Split in halves until the bad job is alone; its neighbours still succeed.
    assert generator.batches == [["a", "bad", "c", "d"], ["a", "bad"], ["a"], ["bad"], ["c", "d"]]
    assert outcome == {"succeeded": 3, "failed": 1}
    assert jobs.statuses() == {
        "a": "succeeded", "bad": "failed", "c": "succeeded", "d": "succeeded",
    }  # fmt: skip
    assert jobs.jobs[ids[1]].error_code == "generation_failed"


def test_an_error_the_model_raises_for_its_input_is_recorded_with_its_code(tmp_path: Path) -> None:
    jobs = FakeJobStore()
    job_id = jobs.add("too long")
    generator = FakeGenerator(fail=lambda ps: InvalidInput("longer than the context"))
    assert execute_jobs(make_runtime(tmp_path, jobs, generator), [job_id]) == {"failed": 1}
    assert jobs.jobs[job_id].error_code == "invalid_input"


def test_out_of_memory_splits_the_chunk_until_it_fits(tmp_path: Path) -> None:
    jobs = FakeJobStore()
    ids = [jobs.add(p, max_new_tokens=2) for p in ("a", "b", "c", "d")]
    generator = FakeGenerator(
        fail=lambda ps: OutOfMemoryError("CUDA out of memory") if len(ps) > 2 else None
    )
    outcome = execute_jobs(make_runtime(tmp_path, jobs, generator), ids)
    assert outcome == {"succeeded": 4}
    assert generator.batches == [["a", "b", "c", "d"], ["a", "b"], ["c", "d"]]


def test_a_lone_job_out_of_memory_goes_back_to_the_queue_until_max_attempts(
    tmp_path: Path,
) -> None:
    jobs = FakeJobStore()
    job_id = jobs.add("huge")
    generator = FakeGenerator(fail=lambda ps: OutOfMemoryError("CUDA out of memory"))
    runtime = make_runtime(tmp_path, jobs, generator, max_attempts=2)
    # Another worker (or this one, later) may have the memory: the job is requeued.
    assert execute_jobs(runtime, [job_id]) == {"queued": 1}
    job = jobs.jobs[job_id]
    assert (job.status, job.attempts, job.worker, job.error_code) == (
        "queued", 1, None, "out_of_memory",
    )  # fmt: skip
    # Its last attempt fails it for good.
    assert execute_jobs(runtime, [job_id]) == {"failed": 1}
    assert (job.status, job.attempts) == ("failed", 2)


def test_a_job_past_its_time_limit_fails_with_timeout_and_the_worker_goes_on(
    tmp_path: Path,
) -> None:
    jobs = FakeJobStore()
    slow = jobs.add("slow", max_new_tokens=4096)
    generator = FakeGenerator(on_step=lambda step: time.sleep(0.001))
    runtime = make_runtime(tmp_path, jobs, generator, time_limits_s={"text": 0.02})
    assert execute_jobs(runtime, [slow]) == {"failed": 1}
    assert jobs.jobs[slow].error_code == "timeout"
    assert generator.steps_run < 4096  # stopped between steps, not after the last one
    assert stored_files(tmp_path) == []
    quick = jobs.add("quick", max_new_tokens=1)
    assert execute_jobs(runtime, [quick]) == {"succeeded": 1}


@pytest.mark.parametrize("progress_interval_s", [0, 3600])
def test_cancel_stops_the_run_at_the_next_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, progress_interval_s: float
) -> None:
    monkeypatch.setattr(execution, "STOP_CHECK_INTERVAL_S", 0.0)  # check at every step
    jobs = FakeJobStore()
    job_id = jobs.add("long", max_new_tokens=100)

    def cancel_after_third(step: int) -> None:
        if step == 3:
            jobs.cancel(job_id)

    generator = FakeGenerator(on_step=cancel_after_third)
    runtime = make_runtime(tmp_path, jobs, generator, progress_interval_s=progress_interval_s)
    assert execute_jobs(runtime, [job_id]) == {"canceled": 1}
    assert generator.steps_run == 3
    # Stored as it went, or, within the interval, by the final write on the canceled row.
    job = jobs.jobs[job_id]
    assert (job.status, job.progress, job.artifacts) == ("canceled", (3, 100), [])
    assert stored_files(tmp_path) == []


def test_a_job_canceled_in_a_chunk_loses_its_result_and_the_others_keep_theirs(
    tmp_path: Path,
) -> None:
    jobs = FakeJobStore()
    ids = [jobs.add(p, max_new_tokens=5) for p in ("a", "b")]
    generator = FakeGenerator(on_step=lambda step: jobs.cancel(ids[0]) if step == 2 else None)
    outcome = execute_jobs(make_runtime(tmp_path, jobs, generator), ids)
    assert outcome == {"succeeded": 1, "discarded": 1}
    assert jobs.statuses() == {"a": "canceled", "b": "succeeded"}
    # The canceled job's bytes and label were deleted; the other's text and label are there.
    assert len(stored_files(tmp_path)) == 2


def test_progress_is_stored_at_a_bounded_rate_and_once_at_the_end(tmp_path: Path) -> None:
    jobs = FakeJobStore()
    ids = [jobs.add(p, max_new_tokens=50) for p in ("a", "b")]
    runtime = make_runtime(tmp_path, jobs, FakeGenerator(), progress_interval_s=3600)
    execute_jobs(runtime, ids)
    # Nothing within the interval; the last report goes in with the outcome.
    assert jobs.progress_writes == []
    assert [job.progress for job in jobs.jobs.values()] == [(50, 50), (50, 50)]


def test_every_step_is_stored_with_no_interval(tmp_path: Path) -> None:
    jobs = FakeJobStore()
    job_id = jobs.add("a", max_new_tokens=4)
    execute_jobs(make_runtime(tmp_path, jobs, FakeGenerator(), progress_interval_s=0), [job_id])
    assert jobs.progress_writes == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_job_canceled_before_its_first_step_never_starts(tmp_path: Path) -> None:
    jobs = FakeJobStore()
    job_id = jobs.add("canceled while the model loaded", max_new_tokens=10)
    generator = FakeGenerator()

    class CancelingModels(FakeModels):
        def get(self, spec: object) -> FakeGenerator:
            jobs.cancel(job_id)
            return generator

    runtime = make_runtime(tmp_path, jobs, generator)
    runtime.models = CancelingModels(generator)  # type: ignore[assignment]
    assert execute_jobs(runtime, [job_id]) == {"canceled": 1}
    assert generator.steps_run == 0


def test_the_status_check_is_bounded_by_its_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(execution, "STOP_CHECK_INTERVAL_S", 3600.0)
    jobs = FakeJobStore()
    job_id = jobs.add("a", max_new_tokens=200)
    execute_jobs(make_runtime(tmp_path, jobs, FakeGenerator()), [job_id])
    assert jobs.status_checks == 1  # before the first step, then not within the interval


def test_a_late_or_duplicate_delivery_does_nothing(tmp_path: Path) -> None:
    jobs = FakeJobStore()
    job_id = jobs.add("once")
    generator = FakeGenerator()
    runtime = make_runtime(tmp_path, jobs, generator)
    assert execute_jobs(runtime, [job_id]) == {"succeeded": 1}
    assert execute_jobs(runtime, [job_id]) == {"skipped": 1}
    assert len(generator.batches) == 1
    assert jobs.jobs[job_id].attempts == 1


def test_a_database_blip_while_claiming_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workers.retry.time.sleep", lambda s: None)
    jobs = FakeJobStore()
    job_id = jobs.add("a")
    jobs.claim_error = OperationalError("UPDATE jobs", {}, ConnectionError("server closed"))
    assert execute_jobs(make_runtime(tmp_path, jobs, FakeGenerator()), [job_id]) == {"succeeded": 1}
    assert jobs.jobs[job_id].status == JobStatus.SUCCEEDED
