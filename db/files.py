"""Queries on files (OpenAI Files API) and on the result files of OpenAI-style batches."""

from __future__ import annotations

import re
import uuid
from typing import Literal

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.orm import Session

from aigc.ids import uuid7
from aigc.vocab import ACTIVE_JOB_STATUSES
from db.retention import expiry
from db.session import affected_rows
from db.tables import Batch, File, Job, Team

# What new_file_id makes: "file-" and the 32 hex digits of a UUID.
FILE_ID_PATTERN = r"^file-[0-9a-f]{32}$"
_FILE_ID = re.compile(FILE_ID_PATTERN)


def is_file_id(file_id: str) -> bool:
    """Whether `file_id` could name a file; any other string (a NUL byte, a long one) is
    answered as absent without reaching the database."""
    return _FILE_ID.fullmatch(file_id) is not None


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
    team_id: uuid.UUID,
    retention_s: int | None,
) -> File:
    """A file's row; it expires under the team's file retention, else `retention_s` (the
    deployment's default; None keeps it until deleted)."""
    file = File(
        id=file_id,
        team_id=team_id,
        purpose=purpose,
        filename=filename,
        size_bytes=size_bytes,
        storage_key=storage_key,
        expires_at=expiry(team_id, Team.file_retention_s, retention_s),
    )
    session.add(file)
    session.flush()
    return file


def get_file(
    session: Session, file_id: str, *, lock: Literal["share", "delete"] | None = None
) -> File | None:
    """The file, locked until the caller's transaction ends: with "share" against deletion
    (a batch being created from it), with "delete" for deletion (such a batch waits, or
    finds it gone)."""
    if not is_file_id(file_id):
        return None
    query = select(File).where(File.id == file_id)
    if lock is not None:
        query = query.with_for_update(read=lock == "share")
    return session.scalar(query)


def batch_using_file(session: Session, *, file_id: str) -> uuid.UUID | None:
    """An unfinished batch that names the file as its input, output or error file, if any.
    A finished batch's files may be deleted (as OpenAI allows): the batch keeps naming them."""
    unfinished = exists().where(Job.batch_id == Batch.id, Job.status.in_(ACTIVE_JOB_STATUSES))
    return session.scalar(
        select(Batch.id)
        .where(
            or_(
                Batch.input_file_id == file_id,
                Batch.output_file_id == file_id,
                Batch.error_file_id == file_id,
            ),
            unfinished,
        )
        .limit(1)
    )


def delete_file(session: Session, *, file_id: str) -> None:
    session.execute(delete(File).where(File.id == file_id))


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
    return affected_rows(result) == 1


def set_batch_error_file(session: Session, batch_id: uuid.UUID, error_file_id: str) -> None:
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id)
        .values(error_file_id=error_file_id)
        .execution_options(synchronize_session=False)
    )
