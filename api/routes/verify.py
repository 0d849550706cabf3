"""Checking a file's AI-generated label: what it carries, whether this deployment signed it,
and, for the team that owns it, the job it came from."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from aigc.errors import InvalidRequest
from aigc.labels import LabelSigner, LayerStatus, UnsupportedFormat, VerifyReport, verify
from aigc.labels.label import MAX_LABEL_BYTES
from api.auth import CallerDep, authenticate
from api.deps import SessionDep
from api.schemas import VerifyOrigin, VerifyResult
from db import jobs as job_queries

router = APIRouter(prefix="/v1/verify", tags=["verify"], dependencies=[Depends(authenticate)])

VERIFY_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file's bytes, at most the request size limit "
        "(AIGC_MAX_REQUEST_BYTES). PNG and WAV are recognised by their bytes; text by a "
        "text/* Content-Type or by coming with `label`.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "",
    name="verify_file",
    response_model=VerifyResult,
    openapi_extra=VERIFY_BODY_DOC,
    responses={413: {"description": "The file is larger than the request size limit"}},
)
async def verify_file(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    label: Annotated[
        str | None,
        Query(
            max_length=MAX_LABEL_BYTES,
            description="For text: the label JSON from the job response (`artifacts[].label`) "
            "or the `.label.json` sidecar; text carries no label inside",
        ),
    ] = None,
) -> VerifyResult:
    """Check a PNG, WAV or text file's AI-generated label; name its job if it is yours."""
    data = await request.body()
    if not data:
        raise InvalidRequest.for_field("file", "the body is empty: send the file's bytes")
    signer: LabelSigner = request.app.state.label_signer
    try:
        report = await run_in_threadpool(
            verify,
            data,
            signer,
            media_type=request.headers.get("content-type"),
            sidecar=label.encode() if label is not None else None,
            credentials=request.app.state.content_credentials,
        )
    except UnsupportedFormat as exc:
        raise InvalidRequest.for_field("file", f"{exc}; Content-Type says what it is") from exc
    return await run_in_threadpool(_result, session, caller.team_id, caller.is_admin, report)


def _result(
    session: Session, team_id: uuid.UUID, is_admin: bool, report: VerifyReport
) -> VerifyResult:
    origin: Literal["your_team", "another_team", "unknown"] = "unknown"
    job = None
    # Only what a file that verifies names is trusted enough to look up: its label's
    # content id, else (the labels stripped by a re-encoding) its watermark's id.
    found = None
    if report.status == LayerStatus.VALID and report.label is not None:
        found = job_queries.artifact_origin(session, uuid.UUID(report.label.content_id))
    elif report.status == LayerStatus.VALID and report.watermark_id is not None:
        found = job_queries.artifact_origin_by_watermark(session, report.watermark_id)
    if found is not None and (found.team_id == team_id or is_admin):
        origin, job = "your_team", VerifyOrigin(**found._asdict())
    elif found is not None:
        origin = "another_team"
    return VerifyResult.model_validate({**report.as_dict(), "origin": origin, "job": job})
