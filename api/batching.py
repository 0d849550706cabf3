"""Accepting a batch: validate every line before storing anything, then one transaction
with a bulk insert (COPY) that wakes the dispatcher at commit; nothing is published here."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy.orm import Session

from aigc.errors import ErrorCode, InvalidBatch, InvalidRequest
from aigc.jsonl import LineErrors
from aigc.settings import Settings
from aigc.vocab import BatchApi
from api.auth import Caller
from api.quotas import check_queue
from api.validation import ValidJob
from db import audit
from db.batches import create_batch
from db.tables import Batch


def _whole_batch_error(field: str, message: str) -> InvalidBatch:
    # Line 0: the batch as a whole.
    return InvalidBatch(
        message,
        [{"line": 0, "field": field, "message": message, "code": ErrorCode.INVALID_BATCH}],
    )


class ValidLines:
    """A batch's decoded lines, checked as they are iterated: the jobs are written to the
    database while later lines are still being checked, so PostgreSQL's work on a large
    batch overlaps this process's. Iteration raises one InvalidBatch listing every bad line
    at its end (after the last good job), and the caller's transaction, which has then
    stored part of the batch, is rolled back: nothing of a bad batch is kept.

    The batch as a whole (empty, too many lines) is checked at once, before any iteration.
    `parse` raises InvalidRequest naming the fields that are wrong; `whole_field` names what
    an error about the batch as a whole points at."""

    def __init__(
        self,
        items: Sequence[tuple[int, Any]],
        parse: Callable[[Any], ValidJob],
        settings: Settings,
        *,
        require_custom_id: bool,
        whole_field: str = "jobs",
    ) -> None:
        if not items:
            raise _whole_batch_error(whole_field, "the batch has no jobs")
        if len(items) > settings.max_batch_jobs:
            raise _whole_batch_error(
                whole_field,
                f"the batch has {len(items)} jobs; at most {settings.max_batch_jobs} are accepted",
            )
        self.items = items
        self.parse = parse
        self.require_custom_id = require_custom_id

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ValidJob]:
        errors = LineErrors()
        seen_custom_ids: dict[str, int] = {}
        for line, raw in self.items:
            try:
                job = self.parse(raw)
            except InvalidRequest as exc:
                errors.add_all(line, exc)
                continue
            if job.custom_id is None and self.require_custom_id:
                errors.add(line, "custom_id", "is required")
            elif job.custom_id is not None:
                first = seen_custom_ids.setdefault(job.custom_id, line)
                if first != line:
                    errors.add(line, "custom_id", f"duplicates the custom_id of line {first}")
            if not errors.count:
                yield job
        errors.raise_if_any()


def accept_batch(
    session: Session,
    *,
    jobs: ValidLines,
    priority: str,
    metadata: dict[str, Any],
    caller: Caller,
    api: BatchApi = BatchApi.NATIVE,
    before_commit: Callable[[Batch], None] | None = None,
    **openai_fields: Any,
) -> Batch:
    """Store the batch and its jobs in one transaction, checking each line as it goes in
    (a bad line raises, and the caller's session rolls the whole batch back); the
    dispatcher, notified at commit, sends them to the workers by the team's fair share.

    `before_commit` runs inside that transaction with the stored batch (the idempotency
    record goes in with it). The team's max_queued is checked first."""
    check_queue(session, caller, adding=len(jobs))
    batch, _ = create_batch(
        session,
        jobs=jobs,
        priority=priority,
        metadata=metadata,
        team_id=caller.team_id,
        key_prefix=caller.key_prefix,
        api=api,
        **openai_fields,
    )
    # One audit row for the batch, never one per job: a batch may hold 50,000.
    audit.record(
        session,
        audit.key_actor(caller),
        audit.AuditAction.BATCH_SUBMITTED,
        target_type="batch",
        target_id=batch.id,
        details={"jobs": batch.total, "api": str(api), "priority": priority},
    )
    if before_commit is not None:
        before_commit(batch)
    session.commit()
    return batch
