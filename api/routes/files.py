"""Files in OpenAI's Files API shape: batch inputs uploaded by clients, and the output and
error files of OpenAI-style batches."""

from __future__ import annotations

import os
import unicodedata
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from aigc.errors import Conflict, Gone, InvalidRequest, NotFound
from aigc.storage import ArtifactStore, Content
from api import quotas
from api.auth import CallerDep, authenticate
from api.deps import BrokerClientDep, SessionDep, SettingsDep, StoreDep
from api.downloads import check_not_expired, presigned_ttl, stored_response
from api.schemas import BINARY
from db import files as file_queries
from db.tables import File

router = APIRouter(prefix="/v1/files", tags=["files"], dependencies=[Depends(authenticate)])

UPLOAD_PURPOSES = ("batch",)
# What common filesystems allow in one name; files.filename holds 256 characters.
MAX_FILENAME_CHARS = 255
MAX_EXTENSION_CHARS = 16  # the part after the last dot kept when a long name is cut
FALLBACK_FILENAME = "upload"
# Characters Windows refuses in names, replaced so a download saves anywhere.
RESERVED_FILENAME_CHARS = frozenset('<>:"|?*')

FileId = Annotated[
    str,
    Path(
        pattern=file_queries.FILE_ID_PATTERN,
        max_length=64,
        description="A file id as this API issues them: `file-` and 32 hex digits.",
        examples=["file-0190f0a1b2c37d4e8f90a1b2c3d4e5f6"],
    ),
]

UPLOAD_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "purpose"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "purpose": {"type": "string", "enum": list(UPLOAD_PURPOSES)},
                    },
                }
            }
        },
    }
}


class FileObject(BaseModel):
    """OpenAI's File object."""

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["processed"] = "processed"
    # Unix seconds after which the content answers 410 (the team's file retention); null:
    # kept until deleted.
    expires_at: int | None = None


def file_object(file: File) -> FileObject:
    return FileObject(
        id=file.id,
        bytes=file.size_bytes,
        created_at=int(file.created_at.timestamp()),
        filename=file.filename,
        purpose=file.purpose,
        expires_at=int(file.expires_at.timestamp()) if file.expires_at else None,
    )


def storage_key(file_id: str) -> str:
    return f"files/{file_id}"


def save_file(
    session: Session,
    store: ArtifactStore,
    *,
    file_id: str,
    purpose: str,
    filename: str,
    data: Content,
    team_id: uuid.UUID,
    retention_s: int | None,
) -> File:
    """The bytes (or a file's contents) into the store, then the row in the caller's
    transaction: a failed insert leaves only unreferenced bytes behind, never a row without
    bytes. The file expires under the team's file retention, else `retention_s`."""
    key = storage_key(file_id)
    if isinstance(data, bytes):
        size = len(data)
    else:
        size = data.seek(0, os.SEEK_END)
        data.seek(0)
    store.put(key, data)
    return file_queries.create_file(
        session,
        file_id=file_id,
        purpose=purpose,
        filename=filename,
        size_bytes=size,
        storage_key=key,
        team_id=team_id,
        retention_s=retention_s,
    )


async def _read_form(request: Request) -> FormData:
    # The body's size is bounded as it arrives by api.limits.BodySizeLimit (413).
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequest.for_field("file", "upload the file as multipart/form-data")
    parser = MultiPartParser(request.headers, request.stream(), max_files=1, max_fields=10)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest.for_field(
            "file", f"the multipart body is malformed: {exc.message}"
        ) from exc


def _purpose(form: FormData) -> str:
    purpose = form.get("purpose")
    if not isinstance(purpose, str) or not purpose:
        raise InvalidRequest.for_field("purpose", "is required")
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequest.for_field("purpose", f"must be one of: {', '.join(UPLOAD_PURPOSES)}")
    return purpose


def safe_filename(raw: str | None) -> str:
    """The upload's name made safe to send back in `Content-Disposition` and to save: its
    last path part only, without control, format (bidi overrides, zero-width) or other
    invisible characters, without leading dots, cut to MAX_FILENAME_CHARS keeping the
    extension. What is left stays readable; an empty result becomes `upload`."""
    # Browsers and some clients send a path; only its last part is the file's name.
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    kept = []
    for char in name:
        category = unicodedata.category(char)
        if category.startswith("C") or category in ("Zl", "Zp"):
            continue  # Cc, Cf, Cs, Co, Cn and line/paragraph separators
        if category == "Zs":
            kept.append(" ")
        elif char in RESERVED_FILENAME_CHARS:
            kept.append("_")
        else:
            kept.append(char)
    name = " ".join("".join(kept).split()).lstrip(". ").rstrip(" ")
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= MAX_EXTENSION_CHARS:
            name = stem[: MAX_FILENAME_CHARS - len(extension) - 1].rstrip() + "." + extension
        else:
            name = name[:MAX_FILENAME_CHARS].rstrip()
    return name or FALLBACK_FILENAME


def _upload(form: FormData) -> tuple[UploadFile, str]:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest.for_field("file", "is required, as a file part")
    return upload, safe_filename(upload.filename)


def _check_fields(form: FormData) -> None:
    for name in form:
        if name not in ("file", "purpose"):
            raise InvalidRequest.for_field(name, "is not supported")


def _create_file(
    session: Session,
    store: ArtifactStore,
    *,
    purpose: str,
    filename: str,
    data: Content,
    team_id: uuid.UUID,
    retention_s: int | None,
) -> FileObject:
    file = save_file(
        session,
        store,
        file_id=file_queries.new_file_id(),
        purpose=purpose,
        filename=filename,
        data=data,
        team_id=team_id,
        retention_s=retention_s,
    )
    session.commit()
    return file_object(file)


@router.post(
    "",
    name="upload_file",
    openapi_extra=UPLOAD_BODY_DOC,
    responses={
        413: {"description": "The file is larger than the batch size limit"},
        **quotas.TOO_MANY_REQUESTS,
    },
)
async def upload_file(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    caller: CallerDep,
    broker: BrokerClientDep,
) -> FileObject:
    """Upload a file (multipart: `file`, `purpose=batch`), up to the batch size limit."""
    # Before the body is read: a refused upload costs no spooling.
    await run_in_threadpool(quotas.check_rate, broker, caller)
    form = await _read_form(request)
    try:
        _check_fields(form)
        purpose = _purpose(form)
        upload, filename = _upload(form)
        # The upload is spooled to disk when large; it is copied into the store from there.
        return await run_in_threadpool(
            _create_file,
            session,
            store,
            purpose=purpose,
            filename=filename,
            data=upload.file,
            team_id=caller.team_id,
            retention_s=settings.file_retention_s,
        )
    finally:
        await form.close()


def _load_file(session: Session, file_id: str) -> File:
    file = file_queries.get_file(session, file_id)
    if file is None:
        raise NotFound("file", file_id)
    return file


@router.get("/{file_id}", name="get_file")
def get_file(file_id: FileId, session: SessionDep) -> FileObject:
    """A file's size, name and purpose."""
    return file_object(_load_file(session, file_id))


class FileDeleted(BaseModel):
    """OpenAI's answer to a file deletion."""

    id: str
    object: Literal["file"] = "file"
    deleted: Literal[True] = True


@router.delete(
    "/{file_id}",
    name="delete_file",
    responses={409: {"description": "An unfinished batch uses the file"}},
)
def delete_file(file_id: FileId, session: SessionDep, store: StoreDep) -> FileDeleted:
    """Delete a file and its bytes. 409 while an unfinished batch uses it (its input, or
    its output/error file); a finished batch's files may be deleted, the batch keeps
    naming them."""
    file = file_queries.get_file(session, file_id, lock="delete")
    if file is None:
        raise NotFound("file", file_id)
    batch_id = file_queries.batch_using_file(session, file_id=file_id)
    if batch_id is not None:
        raise Conflict(f"file {file_id} is used by batch {batch_id}, which has not finished")
    key = file.storage_key
    file_queries.delete_file(session, file_id=file_id)
    session.commit()
    # The row goes first: a failure here leaves unreferenced bytes, never a row without them.
    store.delete(key)
    return FileDeleted(id=file_id)


@router.get(
    "/{file_id}/content",
    name="download_file",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {"schema": BINARY}}},
        206: {"description": "The range asked for", "content": {"application/octet-stream": {}}},
        307: {"description": "S3 store: a presigned URL of the bytes, in Location"},
        410: {"description": "The file expired under its team's retention, or is gone"},
        416: {"description": "The range starts past the end"},
    },
)
def file_content(
    file_id: FileId,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
) -> Response:
    """The file's bytes (HTTP ranges supported), or with an S3 store a redirect (307) to
    them."""
    file = _load_file(session, file_id)
    check_not_expired("file", file_id, file.expires_at)
    if not store.exists(file.storage_key):
        raise Gone(f"the bytes of file {file_id} are no longer stored")
    return stored_response(
        request,
        store,
        file.storage_key,
        media_type="application/octet-stream",
        filename=file.filename,
        url_ttl_s=presigned_ttl(settings.url_ttl_s, file.expires_at),
    )
