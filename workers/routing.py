"""Where a job's message goes: a queue per kind and priority tier (`text.high`, ...).

A queue per kind lets a host serve only the kinds it fits; a queue per tier lets a worker
drain `high` before `normal` before `low` (Celery's message priorities on Redis are only
approximate, so tiers are separate queues read in a fixed order).
"""

from __future__ import annotations

from collections.abc import Sequence

from aigc.vocab import DEFAULT_JOB_PRIORITY, KINDS, Priority

RUN_JOBS_TASK = "aigc.run_jobs"


def queue_for(kind: str, priority: str = DEFAULT_JOB_PRIORITY) -> str:
    return f"{kind}.{priority}"


def queues_for_kinds(kinds: Sequence[str]) -> list[str]:
    """Every queue of the given kinds, highest tier first: the order a worker reads them in."""
    return [queue_for(kind, priority) for priority in Priority for kind in kinds]


ALL_QUEUES: tuple[str, ...] = tuple(queues_for_kinds(KINDS))
