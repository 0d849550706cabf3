"""ORM rows → public bodies."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request

from aigc.catalog import Catalog
from aigc.labels import LabelSigner
from aigc.settings import Settings
from aigc.signing import UrlSigner
from aigc.storage import ArtifactStore
from api.downloads import is_expired, presigned_ttl
from api.schemas import (
    ArtifactPublic,
    JobError,
    JobModeration,
    JobProgress,
    JobPublic,
    LabelPublic,
    ProvenanceArtifact,
    ProvenanceModel,
    ProvenancePublic,
    ProvenanceTimings,
)
from db.tables import ARTIFACT_FACTS, Artifact, Job


def artifact_url(
    request: Request, settings: Settings, artifact: Artifact, *, signed: bool = True
) -> str:
    """The artifact's download URL: signed and expiring (usable without a key, for
    AIGC_URL_TTL_S, never past the artifact's own expiry), or, with `signed=False`, the
    stable one that needs the API key (for what is stored and outlives any expiry: batch
    results, OpenAI result files). With an S3 store the signed URL is a presigned one of
    the bucket itself; the stable one redirects there. An expired artifact's URL is the
    API's, which answers 410 saying so."""
    if signed and not is_expired(artifact.expires_at):
        store: ArtifactStore = request.app.state.store
        direct = store.download_url(
            artifact.storage_key,
            ttl_s=presigned_ttl(settings.url_ttl_s, artifact.expires_at),
            media_type=artifact.mime_type,
            filename=artifact.storage_key.rsplit("/", 1)[-1],
        )
        if direct is not None:
            return direct
    path = f"/v1/artifacts/{artifact.id}/content"
    # Behind a proxy the operator sets the public base; otherwise the address the client used.
    base = settings.public_url or str(request.base_url)
    url = base.rstrip("/") + path
    if signed:
        signer: UrlSigner = request.app.state.url_signer
        url += "?" + signer.query(artifact.id)
    return url


def artifact_label(request: Request, job: Job, artifact: Artifact) -> LabelPublic:
    """The label the worker wrote into (or next to) the artifact, derived again from its row
    and its job (the model revision the worker recorded): the same as long as
    AIGC_LABEL_PRODUCER is unchanged since. No read of the store per artifact. A cache
    hit's artifact shares its source's bytes, so its label is the source's: that artifact's
    id and job."""
    signer: LabelSigner = request.app.state.label_signer
    label = signer.label(
        content_id=artifact.source_artifact_id or artifact.id,
        job_id=job.cached_from or job.id,
        team_id=job.team_id,
        model=job.model,
        model_revision=job_model_revision(request, job),
    )
    return LabelPublic(**label.as_dict())


def job_model_revision(request: Request, job: Job) -> str:
    """The weights hash its worker recorded; for a job from before migration 0014, what
    labels carried then: the model's catalog source."""
    if job.model_revision is not None:
        return job.model_revision
    catalog: Catalog = request.app.state.catalog
    spec = catalog.lookup(job.model)
    return spec.source if spec is not None else ""


def job_public(
    request: Request, settings: Settings, job: Job, *, signed_urls: bool = True
) -> JobPublic:
    error = (
        JobError(
            code=job.error_code,
            message=job.error_message or "",
            moderation=JobModeration.model_validate(job.moderation) if job.moderation else None,
        )
        if job.error_code
        else None
    )
    progress = (
        JobProgress(done=job.progress_done, total=job.progress_total)
        if job.progress_done is not None and job.progress_total is not None
        else None
    )
    return JobPublic(
        id=job.id,
        kind=job.kind,
        model=job.model,
        prompt=job.prompt,
        params=job.params,
        status=job.status,
        priority=job.priority,
        error=error,
        progress=progress,
        attempts=job.attempts,
        worker=job.worker,
        metadata=job.meta,
        batch_id=job.batch_id,
        custom_id=job.custom_id,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        expires_at=job.expires_at,
        webhook=job.webhook,
        webhook_events_filter=job.webhook_events_filter,
        cache_hit=job.cached_from is not None,
        cached_from=job.cached_from,
        artifacts=[
            ArtifactPublic(
                id=artifact.id,
                index=artifact.index,
                mime_type=artifact.mime_type,
                bytes=artifact.size_bytes,
                sha256=artifact.sha256,
                url=artifact_url(request, settings, artifact, signed=signed_urls),
                expires_at=artifact.expires_at,
                **{fact: getattr(artifact, fact) for fact in ARTIFACT_FACTS},
                label=artifact_label(request, job, artifact),
            )
            for artifact in job.artifacts
        ],
    )


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def provenance_public(
    request: Request, job: Job, artifact: Artifact, *, team_name: str
) -> ProvenancePublic:
    catalog: Catalog = request.app.state.catalog
    spec = catalog.lookup(job.model)
    seed = job.params.get("seed")
    return ProvenancePublic(
        artifact=ProvenanceArtifact(
            id=artifact.id,
            index=artifact.index,
            mime_type=artifact.mime_type,
            sha256=artifact.sha256,
            size=artifact.size_bytes,
            created_at=artifact.created_at,
        ),
        job_id=job.id,
        model=ProvenanceModel(
            name=job.model,
            kind=job.kind,
            source=spec.source if spec is not None else "",
            revision=job_model_revision(request, job),
        ),
        prompt=job.prompt,
        params=job.params,
        seed=seed if isinstance(seed, int) else None,
        team=team_name,
        key_prefix=job.key_prefix,
        batch_id=job.batch_id,
        line=job.line + 1 if job.line is not None else None,
        custom_id=job.custom_id,
        worker=job.worker,
        timings=ProvenanceTimings(
            queued_at=job.queued_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            queued_s=_seconds_between(job.queued_at, job.started_at),
            run_s=_seconds_between(job.started_at, job.finished_at),
            attempts=job.attempts,
        ),
        inputs=[],
        label=artifact_label(request, job, artifact),
        cache_hit=job.cached_from is not None,
        cached_from=job.cached_from,
    )
