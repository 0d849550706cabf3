"""Where a job's message goes. A queue per kind lets a host serve only the kinds it fits."""

from __future__ import annotations

from models.params import KINDS

RUN_JOB_TASK = "aigc.run_job"
ALL_QUEUES: tuple[str, ...] = KINDS


def queue_for(kind: str) -> str:
    return kind
