"""Artifact bytes."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response

from aigc.errors import Gone, NotFound
from api.auth import authenticate
from api.deps import SessionDep, StoreDep
from api.downloads import stored_response
from api.schemas import BINARY
from db import jobs as job_queries

router = APIRouter(prefix="/v1/artifacts", tags=["artifacts"], dependencies=[Depends(authenticate)])


@router.get(
    "/{artifact_id}/content",
    name="download_artifact",
    response_class=Response,
    responses={
        200: {
            "description": "The bytes, with their MIME type",
            "content": {"*/*": {"schema": BINARY}},
        },
        206: {"description": "The range asked for", "content": {"*/*": {"schema": BINARY}}},
        304: {"description": "Not modified: the ETag (the sha256) matches If-None-Match"},
        410: {"description": "The artifact's bytes are no longer stored"},
        416: {"description": "The range starts past the end"},
    },
)
def artifact_content(
    artifact_id: uuid.UUID, request: Request, session: SessionDep, store: StoreDep
) -> Response:
    """The artifact's bytes, with its content type (HTTP ranges; ETag is the sha256)."""
    artifact = job_queries.get_artifact(session, artifact_id)
    if artifact is None:
        raise NotFound("artifact", artifact_id)
    if not store.exists(artifact.storage_key):
        raise Gone(f"the bytes of artifact {artifact_id} are no longer stored")
    return stored_response(
        request,
        store,
        artifact.storage_key,
        media_type=artifact.mime_type,
        filename=artifact.storage_key.rsplit("/", 1)[-1],
        sha256=artifact.sha256,
    )
