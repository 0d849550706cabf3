"""Queries on idempotency keys: the first response to a request sent with a key, replayed to
its retries for the key's lifetime."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.intervals import seconds_ago
from db.session import affected_rows
from db.tables import IdempotencyKey


@dataclass(frozen=True)
class StoredResponse:
    request_sha256: str
    status_code: int
    body: Any
    headers: dict[str, str]


def find_response(
    session: Session, *, team_id: uuid.UUID, key: str, route: str, ttl_s: float
) -> StoredResponse | None:
    """The live response stored under the team's key, in one query; an expired one is
    deleted (and committed) and reads as none."""
    this_key = (
        IdempotencyKey.team_id == team_id,
        IdempotencyKey.key == key,
        IdempotencyKey.route == route,
    )
    found = session.execute(
        select(IdempotencyKey, IdempotencyKey.created_at < seconds_ago(ttl_s)).where(*this_key)
    ).first()
    if found is None:
        return None
    row, expired = found
    if expired:
        session.execute(delete(IdempotencyKey).where(*this_key))
        session.commit()
        return None
    return StoredResponse(row.request_sha256, row.status_code, row.response, row.headers)


def store_response(
    session: Session,
    *,
    team_id: uuid.UUID,
    key: str,
    route: str,
    request_sha256: str,
    status_code: int,
    body: Any,
    headers: dict[str, str],
) -> None:
    """Add the response in the caller's transaction: it commits with what the request made.
    A concurrent twin fails on the primary key at its commit."""
    session.add(
        IdempotencyKey(
            team_id=team_id,
            key=key,
            route=route,
            request_sha256=request_sha256,
            status_code=status_code,
            response=body,
            headers=headers,
        )
    )


def purge_expired(session: Session, *, ttl_s: float) -> int:
    """Forget keys past their lifetime; returns how many."""
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < seconds_ago(ttl_s))
    )
    return affected_rows(result)
