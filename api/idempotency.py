"""Idempotency-Key: a retried POST returns the first response and creates nothing new.

The key's row is written in the same transaction as what the request creates, so either
both are committed or neither; a concurrent twin of the request fails on the key's primary
key, rolls back its own work and replays the winner's response.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from aigc.errors import IdempotencyKeyReused
from db import idempotency as idempotency_queries

MAX_KEY_CHARS = 255

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=MAX_KEY_CHARS,
        description="Retries with the same key return the first response for 24 h.",
    ),
]


@dataclass(frozen=True)
class IdempotentRequest:
    team_id: uuid.UUID  # keys are the team's own
    key: str
    route: str
    fingerprint: str


def fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()


def replay_if_seen(session: Session, request: IdempotentRequest, ttl_s: int) -> JSONResponse | None:
    """The stored response for this key, None when the key is new (or expired); a 422 when
    the key was used for a different request."""
    stored = idempotency_queries.find_response(
        session, team_id=request.team_id, key=request.key, route=request.route, ttl_s=ttl_s
    )
    if stored is None:
        return None
    if stored.request_sha256 != request.fingerprint:
        raise IdempotencyKeyReused.for_field(
            "Idempotency-Key", "already used for a request with a different body"
        )
    headers = {**stored.headers, "Idempotent-Replayed": "true"}
    return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)


def remember(
    session: Session,
    request: IdempotentRequest,
    *,
    status_code: int,
    body: Any,
    headers: dict[str, str],
) -> None:
    """Record the response in the caller's transaction (before its commit)."""
    idempotency_queries.store_response(
        session,
        team_id=request.team_id,
        key=request.key,
        route=request.route,
        request_sha256=request.fingerprint,
        status_code=status_code,
        body=body,
        headers=headers,
    )
