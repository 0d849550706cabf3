"""The one place that turns settings into connections: the database engine and the broker
client. Each process calls these once, after any fork, and passes the results in."""

from __future__ import annotations

from redis import Redis
from sqlalchemy import Engine

from aigc.settings import Settings
from db.session import make_engine


def database_engine(settings: Settings, *, pre_ping: bool = True) -> Engine:
    """The process's engine. `pre_ping` suits the API; workers retry statements instead."""
    return make_engine(
        settings.require_database_url(),
        connect_timeout_s=settings.db_connect_timeout_s,
        pre_ping=pre_ping,
    )


def broker_client(settings: Settings) -> Redis:
    """A plain Redis client on the broker (health checks, the dispatcher's view of the
    queues), bounded in time like Celery's own connections."""
    return Redis.from_url(
        settings.require_redis_url(),
        socket_timeout=settings.broker_timeout_s,
        socket_connect_timeout=settings.broker_timeout_s,
    )
