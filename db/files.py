"""Queries on files (OpenAI Files API) and on the result files of OpenAI-style batches."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.orm import Session

from aigc.ids import uuid7
from db.tables import Batch, File


def new_file_id() -> str:
    """OpenAI-style id (`file-…`); the UUIDv7 inside keeps ids time-ordered."""
    return f"file-{uuid7().hex}"


def create_file(
    session: Session,
    *,
    file_id: str,
    purpose: str,
    filename: str,
    size_bytes: int,
    storage_key: str,
) -> File:
    file = File(
        id=file_id,
        purpose=purpose,
        filename=filename,
        size_bytes=size_bytes,
        storage_key=storage_key,
    )
    session.add(file)
    session.flush()
    return file


def get_file(session: Session, file_id: str) -> File | None:
    return session.get(File, file_id)


def claim_batch_output(session: Session, batch_id: uuid.UUID, output_file_id: str) -> bool:
    """Record the batch's output file id unless one is recorded; True for the one caller
    that is to write the result files. The row stays locked until that caller's transaction
    ends, so a concurrent caller waits here and then finds the id set (False)."""
    result = session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.output_file_id.is_(None))
        .values(output_file_id=output_file_id)
        # The in-memory Batch may be stale; the caller refreshes it from the row instead.
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def set_batch_error_file(session: Session, batch_id: uuid.UUID, error_file_id: str) -> None:
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id)
        .values(error_file_id=error_file_id)
        .execution_options(synchronize_session=False)
    )
