"""Queries on idempotency keys: the first response to a request sent with a key, replayed to
its retries for the key's lifetime."""

from __future__ import annotations

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


def find_response(session: Session, *, key: str, route: str, ttl_s: float) -> StoredResponse | None:
    """The live response stored under the key, in one query; an expired one is deleted
    (and committed) and reads as none."""
    found = session.execute(
        select(IdempotencyKey, IdempotencyKey.created_at < seconds_ago(ttl_s)).where(
            IdempotencyKey.key == key, IdempotencyKey.route == route
        )
    ).first()
    if found is None:
        return None
    row, expired = found
    if expired:
        session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.key == key, IdempotencyKey.route == route)
        )
        session.commit()
        return None
    return StoredResponse(row.request_sha256, row.status_code, row.response, row.headers)


def store_response(
    session: Session,
    *,
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
