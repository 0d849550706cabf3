"""Idempotency-Key: a retried POST returns the first response and creates nothing new.

The key's row is written in the same transaction as what the request creates, so either
both are committed or neither; a concurrent twin of the request fails on the key's primary
key, rolls back its own work and replays the winner's response.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from api.errors import ApiError
from db.tables import IdempotencyKey

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
    found = session.execute(
        select(
            IdempotencyKey,
            IdempotencyKey.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, ttl_s),
        ).where(
            IdempotencyKey.key == request.key,
            IdempotencyKey.route == request.route,
        )
    ).first()
    if found is None:
        return None
    row, expired = found
    if expired:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.key == request.key, IdempotencyKey.route == request.route
            )
        )
        session.commit()
        return None
    if row.request_sha256 != request.fingerprint:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
            [{"field": "Idempotency-Key", "message": "already used for another request"}],
        )
    headers = {**row.headers, "Idempotent-Replayed": "true"}
    return JSONResponse(row.response, status_code=row.status_code, headers=headers)


def remember(
    session: Session,
    request: IdempotentRequest,
    *,
    status_code: int,
    body: Any,
    headers: dict[str, str],
) -> None:
    """Record the response in the caller's transaction (before its commit)."""
    session.add(
        IdempotencyKey(
            key=request.key,
            route=request.route,
            request_sha256=request.fingerprint,
            status_code=status_code,
            response=body,
            headers=headers,
        )
    )
