"""The API process's event hub on a real PostgreSQL: it hands each new job event to the
streams that follow its job, and never waits for one that reads slowly."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from aigc.settings import Settings
from api.event_hub import EventHub, TooManyStreams
from db import jobs as job_queries
from db.session import make_session_factory
from tests.conftest import TeamKey

WORKER = "test-worker"


def running_job(engine: sa.Engine, team: TeamKey) -> uuid.UUID:
    with Session(engine) as session, session.begin():
        job = job_queries.create_job(
            session,
            kind="text",
            model="echo",
            prompt="p",
            params={},
            metadata={},
            team_id=team.team_id,
        )
        job_id = job.id
    with Session(engine) as session, session.begin():
        job_queries.claim_jobs(session, [job_id], worker=WORKER, lease_s=60)
    return job_id


def report_progress(engine: sa.Engine, job_id: uuid.UUID, steps: int) -> None:
    """A worker's progress reports, one transaction each, as a real run writes them."""
    for done in range(1, steps + 1):
        with Session(engine) as session, session.begin():
            job_queries.store_progress(
                session, runs={job_id: 1}, worker=WORKER, done=done, total=steps
            )


@pytest.fixture
def engine(settings: Settings) -> sa.Engine:
    return sa.create_engine(settings.database_url or "")


def test_hub_hands_each_event_to_the_stream_of_its_job(engine: sa.Engine, team: TeamKey) -> None:
    followed, other = running_job(engine, team), running_job(engine, team)
    hub = EventHub(engine, make_session_factory(engine), poll_s=0.2, max_streams_per_team=10)

    async def scenario() -> list[int | None]:
        subscription = hub.subscribe(team_id=team.team_id, job_id=followed)
        await asyncio.sleep(1.0)  # the hub's thread starts and listens
        # A stream that subscribed before the hub started is told to read PostgreSQL once.
        assert subscription.behind and await subscription.queue.get() is None
        await asyncio.to_thread(report_progress, engine, other, 3)
        await asyncio.to_thread(report_progress, engine, followed, 4)
        seen: list[int | None] = []
        while len(seen) < 4:
            event = await asyncio.wait_for(subscription.queue.get(), 10)
            assert event is not None
            assert event.job_id == followed and event.type == "progress"
            seen.append(event.progress_done)
        hub.unsubscribe(subscription)
        return seen

    try:
        assert asyncio.run(scenario()) == [1, 2, 3, 4]
    finally:
        hub.close()


def test_a_stream_that_reads_slowly_is_told_to_catch_up(engine: sa.Engine, team: TeamKey) -> None:
    job_id = running_job(engine, team)
    hub = EventHub(
        engine, make_session_factory(engine), poll_s=0.2, max_streams_per_team=10, queue_size=3
    )

    async def scenario() -> tuple[int, bool]:
        subscription = hub.subscribe(team_id=team.team_id, job_id=job_id)
        await asyncio.sleep(1.0)
        # As a stream does once it has read PostgreSQL after the hub's start.
        await subscription.queue.get()
        subscription.behind = False
        # Ten events for a stream that takes none: the hub does not wait for it.
        await asyncio.wait_for(asyncio.to_thread(report_progress, engine, job_id, 10), 30)
        deadline = asyncio.get_running_loop().time() + 10
        while not subscription.behind and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        hub.unsubscribe(subscription)
        return subscription.queue.qsize(), subscription.behind

    try:
        queued, behind = asyncio.run(scenario())
    finally:
        hub.close()
    assert queued == 3 and behind


def test_a_team_has_a_bounded_number_of_streams(engine: sa.Engine, team: TeamKey) -> None:
    hub = EventHub(engine, make_session_factory(engine), poll_s=0.2, max_streams_per_team=2)

    async def scenario() -> None:
        job_id = uuid.uuid4()
        first = hub.subscribe(team_id=team.team_id, job_id=job_id)
        hub.subscribe(team_id=team.team_id, job_id=job_id)
        with pytest.raises(TooManyStreams):
            hub.subscribe(team_id=team.team_id, job_id=job_id)
        hub.unsubscribe(first)
        hub.subscribe(team_id=team.team_id, batch_id=job_id)

    try:
        asyncio.run(scenario())
    finally:
        hub.close()
