"""Checking a job's request against the served models and the configured bounds, shared by
single submissions and every line of a batch."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from aigc.catalog import Catalog, UnknownModel
from aigc.errors import InvalidRequest, ModelNotFound
from aigc.settings import Settings
from api.errors import invalid_request
from api.schemas import BatchJobCreate, JobCreate
from db.batches import NewJob


@dataclass(frozen=True)
class ValidJob(NewJob):
    """A request that passed every check, with the model resolved and defaults applied: a
    job ready to store. (In a batch, the batch's priority applies.)"""

    priority: str = "normal"


def validate_job(body: JobCreate, catalog: Catalog, settings: Settings) -> ValidJob:
    """Raises InvalidRequest naming the fields that are wrong."""
    if len(body.prompt) > settings.max_prompt_chars:
        raise InvalidRequest.for_field("prompt", f"at most {settings.max_prompt_chars} characters")
    if "\x00" in body.prompt:
        raise InvalidRequest.for_field("prompt", "must not contain NUL characters")
    metadata = body.metadata or {}
    encoded_metadata = json.dumps(metadata)
    if len(encoded_metadata.encode()) > settings.max_metadata_bytes:
        raise InvalidRequest.for_field(
            "metadata", f"at most {settings.max_metadata_bytes} bytes as JSON"
        )
    if "\\u0000" in encoded_metadata:
        raise InvalidRequest.for_field("metadata", "must not contain NUL characters")
    try:
        spec = catalog.resolve(body.kind, body.model)
    except UnknownModel as exc:
        raise ModelNotFound.for_field("model", str(exc)) from exc
    try:
        params = spec.validate_params(body.params)
    except ValidationError as exc:
        raise invalid_request(exc, prefix="params.") from exc
    return ValidJob(
        kind=body.kind,
        model=spec.name,
        prompt=body.prompt,
        params=params.model_dump(mode="json"),
        metadata=metadata,
        priority=body.priority,
    )


def parse_batch_job(raw: Any, catalog: Catalog, settings: Settings) -> ValidJob:
    """One job of a batch from decoded JSON: schema, then the job's own checks."""
    if isinstance(raw, dict) and "priority" in raw:
        raise InvalidRequest.for_field("priority", "is set for the whole batch, not per job")
    try:
        body = BatchJobCreate.model_validate(raw)
    except ValidationError as exc:
        raise invalid_request(exc) from exc
    if body.custom_id is not None and "\x00" in body.custom_id:
        raise InvalidRequest.for_field("custom_id", "must not contain NUL characters")
    return replace(validate_job(body, catalog, settings), custom_id=body.custom_id)
