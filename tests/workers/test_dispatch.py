"""Chunking: which jobs travel and run together."""

from __future__ import annotations

import uuid

from workers.dispatch import JobRef, chunk_jobs


def _refs(kind: str, model: str, n: int, priority: str = "low") -> list[JobRef]:
    return [JobRef(uuid.uuid4(), kind, model, priority) for _ in range(n)]


def test_consecutive_jobs_of_one_model_share_chunks_of_its_size() -> None:
    jobs = (
        _refs("text", "tiny-text", 20)
        + _refs("image", "tiny-image", 5)
        + _refs("text", "echo", 300)
    )
    chunks = chunk_jobs(jobs, {"text": 16, "image": 4, "echo": 128})
    assert [(c.kind, len(c.job_ids)) for c in chunks] == [
        ("text", 16), ("text", 4), ("image", 4), ("image", 1),
        ("text", 128), ("text", 128), ("text", 44),
    ]  # fmt: skip
    assert [job_id for c in chunks for job_id in c.job_ids] == [job.id for job in jobs]
    assert chunks[0].queue == "text.low"


def test_kinds_without_a_size_travel_alone() -> None:
    assert [len(c.job_ids) for c in chunk_jobs(_refs("audio", "tiny-audio", 3), {})] == [1, 1, 1]
