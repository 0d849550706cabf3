"""The engine and session factory: created once per process, after any fork, and passed in."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, Result, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

import db.scope  # noqa: F401  # registers team scoping for every session

POOL_SIZE = 10  # per process: the API's thread pool shares it; a worker needs one or two


def make_engine(url: str, *, connect_timeout_s: int = 3, pre_ping: bool = True) -> Engine:
    """An engine whose connect attempts give up after connect_timeout_s, so callers fail
    fast (the API answers 503) instead of hanging while the database is down.

    `pre_ping` tests each pooled connection before use: right for the API, which answers a
    stale connection with an error; workers retry their statements instead and skip it.
    """
    return create_engine(
        url,
        pool_size=POOL_SIZE,
        pool_pre_ping=pre_ping,
        connect_args={"connect_timeout": connect_timeout_s},
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def affected_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed (execute() is typed as returning any Result)."""
    return cast(CursorResult[Any], result).rowcount


def try_advisory_lock(conn: Connection, key: int) -> bool:
    """A session-level advisory lock: held as long as this connection lives, released by
    PostgreSQL if the process dies. False when another connection holds it."""
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())


def ping(session: Session) -> None:
    """A round trip to the database; raises when it is unreachable."""
    session.execute(text("SELECT 1"))
