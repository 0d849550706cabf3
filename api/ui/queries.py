"""The one query the batch page needs beyond db.batches: its jobs filtered by status and
searched by custom_id or prompt. The session's team scope applies as everywhere."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from aigc.vocab import JobStatus
from db.tables import Job


def _like(text: str) -> str:
    """A case-insensitive substring pattern in which the user's % and _ are literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_batch_jobs(
    session: Session,
    batch_id: uuid.UUID,
    *,
    limit: int,
    status: JobStatus | None = None,
    text: str = "",
) -> Sequence[Job]:
    """The batch's jobs in input order, with their artifacts."""
    query = (
        select(Job)
        .where(Job.batch_id == batch_id)
        .options(selectinload(Job.artifacts))
        .order_by(Job.line)
        .limit(limit)
    )
    if status is not None:
        query = query.where(Job.status == status)
    if text:
        pattern = _like(text)
        query = query.where(
            or_(Job.custom_id.ilike(pattern, escape="\\"), Job.prompt.ilike(pattern, escape="\\"))
        )
    return session.scalars(query).all()
