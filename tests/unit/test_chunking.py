"""chunk_jobs: which jobs travel in one message and run as one batch."""

from __future__ import annotations

from aigc.ids import uuid7
from workers.dispatch import JobRef, chunk_jobs


def _refs(kind: str, model: str, n: int, priority: str = "low") -> list[JobRef]:
    return [JobRef(uuid7(), kind, model, priority) for _ in range(n)]


def test_a_models_own_size_wins_over_its_kinds() -> None:
    jobs = _refs("text", "echo", 5) + _refs("text", "tiny-text", 5)
    chunks = chunk_jobs(jobs, {"text": 2, "echo": 5})
    assert [len(c.job_ids) for c in chunks] == [5, 2, 2, 1]


def test_a_change_of_priority_or_model_starts_a_new_chunk() -> None:
    jobs = (
        _refs("image", "tiny-image", 2, "low")
        + _refs("image", "tiny-image", 2, "high")
        + _refs("image", "other", 1, "high")
        + _refs("image", "tiny-image", 1, "high")
    )
    chunks = chunk_jobs(jobs, {"image": 8})
    assert [(c.queue, len(c.job_ids)) for c in chunks] == [
        ("image.low", 2), ("image.high", 2), ("image.high", 1), ("image.high", 1),
    ]  # fmt: skip


def test_input_order_is_kept_across_chunks() -> None:
    jobs = _refs("text", "echo", 7)
    chunks = chunk_jobs(list(reversed(jobs)), {"echo": 3})
    assert [job_id for c in chunks for job_id in c.job_ids] == [j.id for j in reversed(jobs)]


def test_a_size_below_one_means_one() -> None:
    assert [len(c.job_ids) for c in chunk_jobs(_refs("audio", "a", 3), {"audio": 0})] == [1, 1, 1]


def test_no_jobs_no_chunks() -> None:
    assert chunk_jobs([], {"text": 16}) == []
