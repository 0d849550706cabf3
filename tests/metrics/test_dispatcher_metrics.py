"""The dispatcher's counters against real PostgreSQL and Redis: jobs sent to the broker, and
jobs put back to wait because their worker died or the broker lost their message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session

from aigc.connections import broker_client, database_engine
from aigc.settings import Settings
from db.batches import NewJob, create_batch
from db.session import make_session_factory
from tests.conftest import TeamKey
from workers.celery_app import create_celery_app
from workers.dispatcher import Dispatcher


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def dispatcher(settings: Settings) -> Iterator[Dispatcher]:
    tuned = settings.model_copy(update={"chunk_sizes": {"text": 3}, "dispatch_grace_s": 0.0})
    engine = database_engine(tuned)
    broker = broker_client(tuned)
    celery = create_celery_app(tuned)
    try:
        yield Dispatcher(tuned, engine, make_session_factory(engine), celery, broker)
    finally:
        celery.close()
        broker.close()
        engine.dispose()


def test_dispatched_and_returned_jobs_are_counted(
    dispatcher: Dispatcher, db_engine: sa.Engine, team: TeamKey
) -> None:
    with Session(db_engine) as session, session.begin():
        _, ids = create_batch(
            session,
            jobs=[NewJob("text", "echo", f"p{i}", {}, {}) for i in range(6)],
            priority="normal",
            metadata={},
            team_id=team.team_id,
        )
    sent_before = counter("aigc_dispatched_jobs_total", kind="text")
    lost_before = counter("aigc_jobs_returned_total", reason="broker_lost")
    dead_before = counter("aigc_jobs_returned_total", reason="lease_expired")

    assert dispatcher.refill() == 2  # two chunks of three
    assert counter("aigc_dispatched_jobs_total", kind="text") - sent_before == 6

    # A worker took the first chunk and died; the broker lost the second.
    with db_engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE jobs SET status = 'running', attempts = 1, "
                "lease_expires_at = now() - interval '1 second' WHERE id = ANY(:ids)"
            ),
            {"ids": ids[:3]},
        )
    dispatcher.broker.flushdb()
    report = dispatcher.maintain()

    assert (report.reaped, report.returned) == (3, 3)
    assert counter("aigc_jobs_returned_total", reason="lease_expired") - dead_before == 3
    assert counter("aigc_jobs_returned_total", reason="broker_lost") - lost_before == 3
