"""The engine and session factory: created once per process, after any fork, and passed in."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

POOL_SIZE = 10  # per process: the API's thread pool shares it; a worker needs one or two


def make_engine(url: str, *, connect_timeout_s: int = 3) -> Engine:
    """An engine whose connect attempts give up after connect_timeout_s, so callers fail
    fast (the API answers 503) instead of hanging while the database is down."""
    return create_engine(
        url,
        pool_size=POOL_SIZE,
        pool_pre_ping=True,
        connect_args={"connect_timeout": connect_timeout_s},
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
