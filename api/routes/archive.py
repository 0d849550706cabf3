"""A finished batch as one ZIP: every artifact under the name `aigc batch results` gives
it, a manifest.csv mapping custom_id to files, and the results JSONL. The ZIP is written
into the response as it is read from the store: no copy of the whole is ever held."""

from __future__ import annotations

import csv
import io
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from aigc.cli.batch import artifact_filename
from aigc.client.models import Artifact, ResultLine
from aigc.errors import Conflict
from aigc.settings import Settings
from aigc.storage import ArtifactStore
from api.auth import CallerDep, authenticate
from api.deps import SessionDep, SettingsDep, StoreDep
from api.downloads import NOSNIFF, is_expired
from api.results_csv import safe_row
from api.routes.batches import (
    RESULTS_PAGE,
    batch_finished,
    batch_with_results,
    result_chunks,
    result_line,
)
from db import audit
from db import batches as batch_queries
from db.scope import scoped_like

router = APIRouter(prefix="/v1/batches", tags=["batches"], dependencies=[Depends(authenticate)])

CHUNK_BYTES = 1 << 20  # read from the store and handed to the client this much at a time
MANIFEST_FIELDS = ("line", "custom_id", "status", "file", "sha256", "error")
# PNG and WAV gain nothing from deflate; text, CSV and JSONL do.
STORED_TYPES = frozenset({"image/png", "audio/wav"})


class _Pipe(io.RawIOBase):
    """What zipfile writes to: it keeps the bytes until the response takes them. Not
    seekable, so zipfile writes each entry's sizes after its data."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


@dataclass(frozen=True)
class _Member:
    name: str
    storage_key: str
    mime_type: str
    size_bytes: int


def _entry(name: str, mime_type: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_STORED if mime_type in STORED_TYPES else zipfile.ZIP_DEFLATED
    return info


def _manifest_row(line: ResultLine, artifact: Artifact | None, file: str, error: str) -> list[str]:
    # custom_id and the error message are user- and model-written: escaped for spreadsheets.
    return safe_row(
        (line.line, line.custom_id, line.status, file, artifact.sha256 if artifact else "", error)
    )


def archive_chunks(
    sessions: Callable[[], AbstractContextManager[Session]],
    request: Request,
    settings: Settings,
    store: ArtifactStore,
    batch_id: uuid.UUID,
) -> Iterator[bytes]:
    """The ZIP's bytes: a page of jobs is read in a session of its own, then its artifacts
    are copied from the store with no session held."""
    pipe = _Pipe()
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(MANIFEST_FIELDS)
    with zipfile.ZipFile(pipe, "w") as archive:
        after_line = -1
        while True:
            members: list[_Member] = []
            with sessions() as session:
                jobs = batch_queries.batch_jobs(
                    session,
                    batch_id,
                    limit=RESULTS_PAGE,
                    after_line=after_line,
                    with_artifacts=True,
                )
                for job in jobs:
                    line = ResultLine.model_validate(result_line(request, settings, store, job))
                    error = line.error.message if line.error else ""
                    if not job.artifacts:
                        writer.writerow(_manifest_row(line, None, "", error))
                    for artifact, row in zip(line.artifacts, job.artifacts, strict=True):
                        if is_expired(row.expires_at):
                            writer.writerow(_manifest_row(line, artifact, "", "expired"))
                            continue
                        name = artifact_filename(line, artifact)
                        writer.writerow(_manifest_row(line, artifact, name, error))
                        members.append(
                            _Member(name, row.storage_key, row.mime_type, row.size_bytes)
                        )
                    session.expunge(job)
            if not jobs:
                break
            after_line = jobs[-1].line or 0
            for member in members:
                yield from _copy(archive, pipe, store, member)
        with archive.open(_entry("results.jsonl", "application/x-ndjson"), "w") as results:
            for chunk in result_chunks(sessions, request, settings, store, batch_id):
                results.write(chunk)
                yield pipe.take()
        archive.writestr(_entry("manifest.csv", "text/csv"), manifest.getvalue())
    yield pipe.take()


def _copy(
    archive: zipfile.ZipFile, pipe: _Pipe, store: ArtifactStore, member: _Member
) -> Iterator[bytes]:
    entry = _entry(member.name, member.mime_type)
    large = member.size_bytes >= zipfile.ZIP64_LIMIT
    with store.open(member.storage_key) as source, archive.open(entry, "w", force_zip64=large) as f:
        while chunk := source.read(CHUNK_BYTES):
            f.write(chunk)
            yield pipe.take()


@router.get(
    "/{batch_id}/archive",
    name="get_batch_archive",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": (
                "A ZIP: one file per artifact (`<line>-<custom_id>-<index>.<ext>`), "
                "manifest.csv (line, custom_id, status, file, sha256, error) and results.jsonl"
            ),
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        },
        409: {"description": "The batch is still running"},
        410: {"description": "The batch's results expired under the team's retention"},
    },
)
def batch_archive(
    batch_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
    store: StoreDep,
) -> StreamingResponse:
    """Download a finished batch as one ZIP, streamed."""
    batch = batch_with_results(session, batch_id)
    if not batch_finished(session, batch):
        raise Conflict(f"batch {batch_id} is still running: its archive is ready when it ends")
    audit.record(
        session,
        audit.key_actor(caller),
        audit.AuditAction.ARCHIVE_DOWNLOADED,
        target_type="batch",
        target_id=batch_id,
        team_id=batch.team_id,
    )
    session.commit()
    factory = request.app.state.session_factory
    # Each page's session is scoped as this request's is: it reads only the caller's rows.
    return StreamingResponse(
        archive_chunks(lambda: scoped_like(factory(), session), request, settings, store, batch_id),
        media_type="application/zip",
        headers={**NOSNIFF, "Content-Disposition": f'attachment; filename="batch-{batch_id}.zip"'},
    )
