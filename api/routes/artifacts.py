"""Artifact bytes."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import FileResponse, StreamingResponse

from aigc.errors import Gone, NotFound
from api.deps import SessionDep, StoreDep
from db import jobs as job_queries

router = APIRouter(prefix="/v1/artifacts", tags=["artifacts"])


@router.get(
    "/{artifact_id}/content",
    name="artifact_content",
    response_class=StreamingResponse,
    response_model=None,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def artifact_content(
    artifact_id: uuid.UUID, session: SessionDep, store: StoreDep
) -> FileResponse | StreamingResponse:
    """The artifact's bytes, with its content type."""
    artifact = job_queries.get_artifact(session, artifact_id)
    if artifact is None:
        raise NotFound("artifact", artifact_id)
    if not store.exists(artifact.storage_key):
        raise Gone(f"the bytes of artifact {artifact_id} are no longer stored")
    filename = artifact.storage_key.rsplit("/", 1)[-1]
    headers = {"ETag": f'"{artifact.sha256}"'}
    path = store.local_path(artifact.storage_key)
    if path is not None:
        return FileResponse(path, media_type=artifact.mime_type, filename=filename, headers=headers)
    return StreamingResponse(
        store.open(artifact.storage_key), media_type=artifact.mime_type, headers=headers
    )
