"""Artifact bytes: with an API key (the team's own artifacts), or through a signed,
expiring URL from a job response (no key: a browser or a CMS can fetch it). With an S3
store both answer a redirect to a presigned URL of the bytes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from aigc.errors import Gone, NotFound
from aigc.signing import UrlSigner
from api.auth import CredentialsDep, authenticate
from api.deps import SessionDep, SettingsDep, StoreDep
from api.downloads import check_not_expired, presigned_ttl, stored_response
from api.schemas import BINARY, ProvenancePublic
from api.serialize import provenance_public
from db import audit
from db import jobs as job_queries
from db.tables import Team

# No router-wide authentication: the route authenticates a key itself where the URL is not
# signed.
router = APIRouter(prefix="/v1/artifacts", tags=["artifacts"])

# Taken as text and checked by aigc.signing: any malformed value is a 403 like a wrong one.
Expires = Annotated[
    str | None,
    Query(description="Of a signed URL: when it stops working, in unix seconds."),
]
Signature = Annotated[
    str | None,
    Query(description="Of a signed URL: HMAC-SHA256 of the artifact id and `expires`, hex."),
]


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
        307: {"description": "S3 store: a presigned URL of the bytes, in Location"},
        401: {"description": "Not signed, and no valid API key"},
        403: {"description": "Signed, but expired, altered or malformed"},
        410: {"description": "The artifact expired under its team's retention, or is gone"},
        416: {"description": "The range starts past the end"},
    },
)
def artifact_content(
    artifact_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    credentials: CredentialsDep,
    expires: Expires = None,
    signature: Signature = None,
) -> Response:
    """The artifact's bytes, with its content type (HTTP ranges; ETag is the sha256). A
    signed URL (`expires`, `signature`) needs no key and decides alone; without one, the
    API key's team must own the artifact."""
    if expires is None and signature is None:
        # 401, or the session sees only the team's rows.
        actor = audit.key_actor(authenticate(session, credentials))
    else:
        signer: UrlSigner = request.app.state.url_signer
        signer.check(artifact_id, expires, signature)  # 403
        actor = audit.Actor(None, None, audit.SIGNED_URL_ACTOR)
    artifact = job_queries.get_artifact(session, artifact_id)
    if artifact is None:
        raise NotFound("artifact", artifact_id)
    check_not_expired("artifact", artifact_id, artifact.expires_at)
    if not store.exists(artifact.storage_key):
        raise Gone(f"the bytes of artifact {artifact_id} are no longer stored")
    audit.record(
        session,
        actor,
        audit.AuditAction.ARTIFACT_DOWNLOADED,
        target_type="artifact",
        target_id=artifact_id,
        team_id=artifact.team_id,
        details={"job_id": str(artifact.job_id)},
    )
    session.commit()
    return stored_response(
        request,
        store,
        artifact.storage_key,
        media_type=artifact.mime_type,
        filename=artifact.storage_key.rsplit("/", 1)[-1],
        sha256=artifact.sha256,
        url_ttl_s=presigned_ttl(settings.url_ttl_s, artifact.expires_at),
    )


@router.get(
    "/{artifact_id}/provenance",
    name="get_artifact_provenance",
    response_model=ProvenancePublic,
    dependencies=[Depends(authenticate)],
    responses={410: {"description": "The artifact expired under its team's retention"}},
)
def artifact_provenance(
    artifact_id: uuid.UUID, request: Request, session: SessionDep
) -> ProvenancePublic:
    """Where the artifact came from: the model and its weights' hash, the prompt, params and
    seed, the team, key, batch line and worker, the timings, and its label."""
    artifact = job_queries.get_artifact(session, artifact_id)  # the key's team's only
    if artifact is None:
        raise NotFound("artifact", artifact_id)
    check_not_expired("artifact", artifact_id, artifact.expires_at)
    job = job_queries.get_job(session, artifact.job_id)
    team = session.get(Team, artifact.team_id)
    if job is None or team is None:  # an artifact row outlives neither
        raise NotFound("artifact", artifact_id)
    return provenance_public(request, job, artifact, team_name=team.name)
