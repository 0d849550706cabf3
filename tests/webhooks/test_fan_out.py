"""The deliverer's fan-out and retry schedule, one round at a time in this process, on the
real PostgreSQL: job state changes are made as workers make them (one UPDATE each), and
the deliveries they call for are read back. Nothing is sent here."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from aigc.settings import Settings
from aigc.vocab import JobStatus
from db import webhooks as webhook_queries
from db.batches import NewJob, create_batch
from db.events import EventCursor
from db.jobs import create_job, requeue_jobs
from db.session import make_session_factory
from db.tables import WebhookEndpoint
from tests.conftest import TeamKey
from workers.deliverer import CONSUMER, Deliverer

HOOK = "https://hooks.example.com/batch"


@pytest.fixture
def sessions(db_engine: sa.Engine) -> sessionmaker[Session]:
    return make_session_factory(db_engine)


@pytest.fixture
def deliverer(
    settings: Settings, db_engine: sa.Engine, sessions: sessionmaker[Session]
) -> Iterator[Deliverer]:
    deliverer = Deliverer(settings, db_engine, sessions)
    drain(deliverer)  # start from here: earlier tests' events are not this test's
    yield deliverer


def drain(deliverer: Deliverer, timeout_s: float = 30.0) -> None:
    """Fan out until every event committed so far is behind the cursor. Events become
    readable only once every older transaction of the PostgreSQL server has ended (db.events),
    and other test sessions share the server: this waits for them."""
    with deliverer.session_factory() as session:
        row = session.execute(
            sa.text("SELECT txid::text, id FROM job_events ORDER BY txid DESC, id DESC LIMIT 1")
        ).first()
    last = EventCursor(int(row[0]), row[1]) if row else None
    deadline = time.monotonic() + timeout_s
    while True:
        deliverer.fan_out()
        with deliverer.session_factory.begin() as session:
            cursor = webhook_queries.read_cursor(session, CONSUMER)
        if last is None or (cursor is not None and cursor >= last):
            return
        assert time.monotonic() < deadline, f"events up to {last} still unread at {cursor}"
        time.sleep(0.05)


def set_status(sessions: sessionmaker[Session], status: str, **where: Any) -> None:
    """One UPDATE of jobs, as a worker's claim or outcome is."""
    column, value = next(iter(where.items()))
    with sessions.begin() as session:
        session.execute(
            sa.text(f"UPDATE jobs SET status = :status WHERE {column} = :value"),
            {"status": status, "value": value},
        )


def deliveries(sessions: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with sessions() as session:
        rows = session.execute(
            sa.text("SELECT event_type, url, msg_id FROM webhook_deliveries ORDER BY id")
        )
        return [(row[0], row[1], row[2]) for row in rows]


def test_a_batch_is_announced_started_once_and_completed_once_per_finish(
    deliverer: Deliverer, sessions: sessionmaker[Session], team: TeamKey
) -> None:
    with sessions.begin() as session:
        batch, job_ids = create_batch(
            session,
            jobs=[NewJob("text", "echo", f"p{n}", {}, {}) for n in range(3)],
            priority="normal",
            metadata={},
            team_id=team.team_id,
            webhook=HOOK,
            webhook_events_filter=["start", "completed"],
        )
    set_status(sessions, JobStatus.RUNNING, batch_id=batch.id)
    set_status(sessions, JobStatus.SUCCEEDED, id=job_ids[0])
    set_status(sessions, JobStatus.SUCCEEDED, id=job_ids[1])
    drain(deliverer)
    assert [d[0] for d in deliveries(sessions)] == ["batch.started"]
    set_status(sessions, JobStatus.FAILED, id=job_ids[2])
    drain(deliverer)
    assert [d[0] for d in deliveries(sessions)] == ["batch.started", "batch.completed"]

    # A retry sends the failed job back; its next end is announced again, its start not.
    with sessions.begin() as session:
        assert len(requeue_jobs(session, statuses=(JobStatus.FAILED,), batch_id=batch.id)) == 1
    set_status(sessions, JobStatus.RUNNING, id=job_ids[2])
    drain(deliverer)
    assert [d[0] for d in deliveries(sessions)] == ["batch.started", "batch.completed"]
    set_status(sessions, JobStatus.SUCCEEDED, id=job_ids[2])
    drain(deliverer)
    found = deliveries(sessions)
    assert [d[0] for d in found] == ["batch.started", "batch.completed", "batch.completed"]
    assert len({d[2] for d in found}) == 3
    with sessions() as session:
        payload = session.scalar(
            sa.text(
                "SELECT payload FROM webhook_deliveries WHERE event_type = 'batch.completed' "
                "ORDER BY id DESC LIMIT 1"
            )
        )
    assert payload["data"]["status"] == "completed"
    assert payload["data"]["counts"]["succeeded"] == 3


def test_a_page_fanned_out_twice_adds_nothing_twice(
    deliverer: Deliverer, sessions: sessionmaker[Session], team: TeamKey
) -> None:
    with sessions.begin() as session:
        start = webhook_queries.read_cursor(session, CONSUMER)
        session.add(
            WebhookEndpoint(
                team_id=team.team_id,
                url="https://hooks.example.com/all",
                events=["job.started", "job.completed"],
            )
        )
        job = create_job(
            session, kind="text", model="echo", prompt="x", params={}, metadata={},
            team_id=team.team_id, webhook="https://hooks.example.com/own",
            webhook_events_filter=["completed"],
        )  # fmt: skip
    set_status(sessions, JobStatus.RUNNING, id=job.id)
    set_status(sessions, JobStatus.SUCCEEDED, id=job.id)
    drain(deliverer)
    first = deliveries(sessions)
    assert sorted((d[0], d[1]) for d in first) == [
        ("job.completed", "https://hooks.example.com/all"),
        ("job.completed", "https://hooks.example.com/own"),
        ("job.started", "https://hooks.example.com/all"),
    ]
    # The fan-out's cursor goes back (a crash after sending, say): the same page again.
    assert start is not None
    with sessions.begin() as session:
        webhook_queries.save_cursor(session, CONSUMER, start)
    drain(deliverer)
    assert deliveries(sessions) == first


def test_retries_back_off_with_jitter_until_the_deadline(deliverer: Deliverer) -> None:
    settings = deliverer.settings.model_copy(
        update={"webhook_retry_base_s": 1.0, "webhook_retry_cap_s": 8.0}
    )
    deliverer.settings = settings
    now = datetime.now(UTC)
    for attempts, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0)]:
        due = webhook_queries.DueDelivery(
            id=uuid.uuid4(), team_id=uuid.uuid4(), msg_id="m", url=HOOK, payload={},
            attempts=attempts, deadline_at=now + timedelta(hours=1), lease=now,
        )  # fmt: skip
        waits = [(deliverer._retry_at(due) - now).total_seconds() for _ in range(50)]  # type: ignore[operator]
        assert all(-0.1 <= wait <= ceiling + 1 for wait in waits)
        assert max(waits) - min(waits) > ceiling / 10  # spread, not one instant
    late = webhook_queries.DueDelivery(
        id=uuid.uuid4(), team_id=uuid.uuid4(), msg_id="m", url=HOOK, payload={},
        attempts=3, deadline_at=now - timedelta(seconds=1), lease=now,
    )  # fmt: skip
    assert deliverer._retry_at(late) is None


def test_deleting_an_endpoint_stops_what_waits_for_it(
    deliverer: Deliverer, sessions: sessionmaker[Session], team: TeamKey
) -> None:
    with sessions.begin() as session:
        endpoint = WebhookEndpoint(
            team_id=team.team_id, url="https://hooks.example.com/gone", events=["job.completed"]
        )
        session.add(endpoint)
        job = create_job(
            session, kind="text", model="echo", prompt="x", params={}, metadata={},
            team_id=team.team_id,
        )  # fmt: skip
    set_status(sessions, JobStatus.SUCCEEDED, id=job.id)
    drain(deliverer)
    with sessions.begin() as session:
        assert webhook_queries.delete_endpoint(session, endpoint.id)
    with sessions() as session:
        rows = session.execute(
            sa.text("SELECT status, endpoint_id, last_error FROM webhook_deliveries")
        ).all()
    assert rows == [("failed", None, "the endpoint was deleted")]


def test_events_are_purged_once_old_and_read(
    deliverer: Deliverer, sessions: sessionmaker[Session], team: TeamKey
) -> None:
    with sessions.begin() as session:
        jobs = [
            create_job(
                session,
                kind="text",
                model="echo",
                prompt=str(n),
                params={},
                metadata={},
                team_id=team.team_id,
            )  # fmt: skip
            for n in range(2)
        ]
    set_status(sessions, JobStatus.RUNNING, id=jobs[0].id)
    drain(deliverer)
    set_status(sessions, JobStatus.RUNNING, id=jobs[1].id)  # not read yet
    with sessions.begin() as session:
        session.execute(sa.text("UPDATE job_events SET created_at = now() - interval '8 days'"))
    assert deliverer.purge_events() == 1
    with sessions() as session:
        left = session.execute(sa.text("SELECT job_id FROM job_events")).scalars().all()
    assert left == [jobs[1].id]
