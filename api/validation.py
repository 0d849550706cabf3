"""Checking a job's request against the served models, the configured bounds and the
compute budget, shared by single submissions and every line of a batch; and the route
class that decodes JSON request bodies with the strict decoder."""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from aigc import strict_json
from aigc.budget import check_budget
from aigc.catalog import Catalog
from aigc.errors import InvalidRequest
from aigc.settings import Settings
from aigc.vocab import DEFAULT_JOB_PRIORITY, Priority
from api.errors import invalid_request
from api.schemas import BatchJobCreate, JobRequest
from db.batches import NewJob
from models.params import _Params as Params
from models.registry import ModelSpec


@dataclass(frozen=True)
class ValidJob(NewJob):
    """A request that passed every check, with the model resolved and defaults applied: a
    job ready to store. (In a batch, the batch's priority applies.)"""

    priority: Priority = DEFAULT_JOB_PRIORITY


def validate_job(
    body: JobRequest, catalog: Catalog, settings: Settings, custom_id: str | None = None
) -> ValidJob:
    """Raises InvalidRequest (ModelNotFound, OverBudget, ...) naming the fields that are
    wrong."""
    if len(body.prompt) > settings.max_prompt_chars:
        raise InvalidRequest.for_field("prompt", f"at most {settings.max_prompt_chars} characters")
    metadata = body.metadata or {}
    if metadata and len(json.dumps(metadata).encode()) > settings.max_metadata_bytes:
        raise InvalidRequest.for_field(
            "metadata", f"at most {settings.max_metadata_bytes} bytes as JSON"
        )
    spec = catalog.resolve(body.kind, body.model)
    try:
        params, stored = _valid_params(spec, body.params)
    except ValidationError as exc:
        raise invalid_request(exc, prefix="params.") from exc
    check_budget(spec, body.prompt, params, settings)
    return ValidJob(
        kind=body.kind,
        model=spec.name,
        prompt=body.prompt,
        params=stored,
        metadata=metadata,
        custom_id=custom_id,
        priority=body.priority,
    )


# Flat params already validated, by model and value: a batch's lines mostly repeat theirs.
_VALID_PARAMS: dict[tuple[int, tuple[Any, ...]], tuple[ModelSpec, Params, dict[str, Any]]] = {}
_VALID_PARAMS_SIZE = 256


def _valid_params(spec: ModelSpec, raw: dict[str, Any] | None) -> tuple[Params, dict[str, Any]]:
    """The model's params from the client's, and (a copy of) what is stored of them. Flat
    params are validated once per model and value; the value's type is part of the key,
    since `true`, `1` and `1.0` are equal in Python and not here."""
    try:
        key = (id(spec), tuple((name, type(value), value) for name, value in (raw or {}).items()))
        cached = _VALID_PARAMS.get(key)
    except TypeError:  # nested values are not hashable: checked each time
        cached, key = None, None
    if cached is None or cached[0] is not spec:
        params = spec.validate_params(raw)
        cached = (spec, params, params.model_dump(mode="json"))
        if key is not None:
            if len(_VALID_PARAMS) >= _VALID_PARAMS_SIZE:
                _VALID_PARAMS.clear()
            _VALID_PARAMS[key] = cached
    return cached[1], dict(cached[2])


def parse_batch_job(raw: Any, catalog: Catalog, settings: Settings) -> ValidJob:
    """One job of a batch from decoded JSON: schema, then the job's own checks."""
    if isinstance(raw, dict) and "priority" in raw:
        raise InvalidRequest.for_field("priority", "is set for the whole batch, not per job")
    try:
        body = BatchJobCreate.model_validate(raw)
    except ValidationError as exc:
        raise invalid_request(exc) from exc
    return validate_job(body, catalog, settings, custom_id=body.custom_id)


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI would decode a body of this content type as JSON."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class StrictJsonRequest(Request):
    """A request whose JSON body is decoded by aigc.strict_json."""

    async def decode_json(self) -> None:
        """Decode the body now, before FastAPI reads it, so that a refused body is our 422
        naming the field (inside FastAPI's body reading any error becomes a 400)."""
        if _is_json(self.headers.get("content-type")):
            body = await self.body()
            if body:
                self._json = strict_json.loads(body)


class StrictJsonRoute(APIRoute):
    """FastAPI's custom route class: every JSON body of the route's router goes through the
    strict decoder (no NaN, no out-of-range numbers, no lone surrogates or NUL, no deep
    nesting, no duplicate keys)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            strict = StrictJsonRequest(request.scope, request.receive)
            await strict.decode_json()
            return await handler(strict)

        return strict_handler
