"""Files in OpenAI's Files API shape: batch inputs uploaded by clients, and the output and
error files of OpenAI-style batches."""

from __future__ import annotations

import os
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from aigc.errors import Gone, InvalidRequest, NotFound
from aigc.storage import ArtifactStore, Content
from api.deps import SessionDep, SettingsDep, StoreDep
from db import files as file_queries
from db.tables import File

router = APIRouter(prefix="/v1/files", tags=["files"])

UPLOAD_PURPOSES = ("batch",)
MAX_FILENAME_CHARS = 256  # files.filename

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


def file_object(file: File) -> FileObject:
    return FileObject(
        id=file.id,
        bytes=file.size_bytes,
        created_at=int(file.created_at.timestamp()),
        filename=file.filename,
        purpose=file.purpose,
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
) -> File:
    """The bytes (or a file's contents) into the store, then the row in the caller's
    transaction: a failed insert leaves only unreferenced bytes behind, never a row without
    bytes."""
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


def _upload(form: FormData) -> tuple[UploadFile, str]:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest.for_field("file", "is required, as a file part")
    # Browsers and some clients send a path; only its last part is the file's name.
    filename = (upload.filename or "upload").replace("\\", "/").rsplit("/", 1)[-1] or "upload"
    if len(filename) > MAX_FILENAME_CHARS:
        raise InvalidRequest.for_field(
            "file", f"the file name is longer than {MAX_FILENAME_CHARS} characters"
        )
    if "\x00" in filename:
        raise InvalidRequest.for_field("file", "the file name must not contain NUL characters")
    return upload, filename


def _check_fields(form: FormData) -> None:
    for name in form:
        if name not in ("file", "purpose"):
            raise InvalidRequest.for_field(name, "is not supported")


def _create_file(
    session: Session, store: ArtifactStore, *, purpose: str, filename: str, data: Content
) -> FileObject:
    file = save_file(
        session,
        store,
        file_id=file_queries.new_file_id(),
        purpose=purpose,
        filename=filename,
        data=data,
    )
    session.commit()
    return file_object(file)


@router.post("", openapi_extra=UPLOAD_BODY_DOC)
async def upload_file(
    request: Request, session: SessionDep, settings: SettingsDep, store: StoreDep
) -> FileObject:
    """Upload a file (multipart: `file`, `purpose=batch`), up to the batch size limit."""
    form = await _read_form(request)
    try:
        _check_fields(form)
        purpose = _purpose(form)
        upload, filename = _upload(form)
        # The upload is spooled to disk when large; it is copied into the store from there.
        return await run_in_threadpool(
            _create_file, session, store, purpose=purpose, filename=filename, data=upload.file
        )
    finally:
        await form.close()


def _load_file(session: Session, file_id: str) -> File:
    file = file_queries.get_file(session, file_id)
    if file is None:
        raise NotFound("file", file_id)
    return file


@router.get("/{file_id}")
def get_file(file_id: str, session: SessionDep) -> FileObject:
    """A file's size, name and purpose."""
    return file_object(_load_file(session, file_id))


@router.get(
    "/{file_id}/content",
    response_class=StreamingResponse,
    response_model=None,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def file_content(
    file_id: str, session: SessionDep, store: StoreDep
) -> FileResponse | StreamingResponse:
    """The file's bytes."""
    file = _load_file(session, file_id)
    if not store.exists(file.storage_key):
        raise Gone(f"the bytes of file {file_id} are no longer stored")
    path = store.local_path(file.storage_key)
    if path is not None:
        return FileResponse(path, media_type="application/octet-stream", filename=file.filename)
    return StreamingResponse(store.open(file.storage_key), media_type="application/octet-stream")
