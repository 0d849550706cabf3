"""The dispatcher against real PostgreSQL and Redis: jobs wait in PostgreSQL, the broker holds
a bounded window of chunks, and the next chunk is chosen by team share, then tier. Messages
are taken off the broker here the way a worker takes them (oldest first), so what each
assertion sees is exactly what a worker would run next."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from aigc.connections import broker_client, database_engine
from aigc.settings import Settings
from aigc.vocab import JobStatus
from db.batches import NewJob, create_batch
from db.jobs import create_job
from db.session import make_session_factory
from tests.conftest import TeamKey, make_team_key
from workers.celery_app import create_celery_app
from workers.dispatcher import Dispatcher, job_ids_in_message
from workers.routing import ALL_QUEUES

CHUNK = 4


@dataclass
class Rig:
    dispatcher: Dispatcher
    session_factory: sessionmaker[Session]
    broker: redis.Redis
    team_of: dict[uuid.UUID, str]
    running: list[uuid.UUID] = field(default_factory=list)

    def add_batch(self, team: TeamKey, n: int, priority: str = "normal") -> list[uuid.UUID]:
        with self.session_factory.begin() as session:
            _, ids = create_batch(
                session,
                jobs=[NewJob("text", "echo", f"p{i}", {}, {}) for i in range(n)],
                priority=priority,
                metadata={},
                team_id=team.team_id,
            )
        self.team_of.update(dict.fromkeys(ids, team.name))
        return ids

    def add_job(self, team: TeamKey, priority: str) -> uuid.UUID:
        with self.session_factory.begin() as session:
            job = create_job(
                session,
                kind="text",
                model="echo",
                prompt="one",
                params={},
                metadata={},
                team_id=team.team_id,
                priority=priority,
            )
        self.team_of[job.id] = team.name
        return job.id

    def take(self) -> list[uuid.UUID] | None:
        """The message a worker would take next (high tier first, oldest first), as ids."""
        for queue in ALL_QUEUES:
            raw = self.broker.rpop(queue)
            if raw is not None:
                return [uuid.UUID(i) for i in job_ids_in_message(raw)]  # type: ignore[arg-type]
        return None

    def run_next(self) -> list[uuid.UUID]:
        """One worker's turn: the chunk it ran ends, it takes the next, the dispatcher (woken
        by the claim) refills. The chunk taken stays in flight until the next turn."""
        if self.running:
            self.finish(self.running)
        self.dispatcher.refill()
        ids = self.take()
        assert ids is not None, "nothing was dispatched"
        self.running = ids
        self.dispatcher.refill()
        return ids

    def finish(self, ids: list[uuid.UUID]) -> None:
        with self.session_factory.begin() as session:
            session.execute(
                sa.text("UPDATE jobs SET status = 'succeeded' WHERE id = ANY(:ids)"),
                {"ids": ids},
            )

    def queued_messages(self) -> int:
        return sum(int(self.broker.llen(queue)) for queue in ALL_QUEUES)

    def waiting(self) -> int:
        with self.session_factory() as session:
            return int(
                session.scalar(
                    sa.text(
                        "SELECT count(*) FROM jobs WHERE status = 'queued' "
                        "AND dispatched_at IS NULL"
                    )
                )
                or 0
            )


@pytest.fixture
def rig(settings: Settings) -> Iterator[Rig]:
    tuned = settings.model_copy(
        update={"chunk_sizes": {"text": CHUNK}, "dispatch_window": 2, "dispatch_grace_s": 0.0}
    )
    engine = database_engine(tuned)
    broker = broker_client(tuned)
    celery = create_celery_app(tuned)
    factory = make_session_factory(engine)
    try:
        yield Rig(Dispatcher(tuned, engine, factory, celery, broker), factory, broker, {})
    finally:
        celery.close()
        broker.close()
        engine.dispose()


def test_jobs_wait_in_postgres_and_the_broker_holds_a_window(rig: Rig, team: TeamKey) -> None:
    ids = rig.add_batch(team, 40)
    assert rig.waiting() == 40 and rig.queued_messages() == 0  # accepting published nothing

    assert rig.dispatcher.refill() == 2
    assert rig.queued_messages() == 2  # the window, not the batch
    assert rig.waiting() == 40 - 2 * CHUNK
    assert rig.dispatcher.refill() == 0  # full: nothing more until a worker takes one

    # Taken in input order, a chunk at a time.
    assert rig.take() == ids[:CHUNK]
    assert rig.dispatcher.refill() == 1
    assert rig.take() == ids[CHUNK : 2 * CHUNK]


def test_a_teams_high_tier_goes_before_its_earlier_bulk(rig: Rig, team: TeamKey) -> None:
    bulk = rig.add_batch(team, 12, priority="low")
    urgent = rig.add_job(team, "high")
    assert rig.run_next() == [urgent]
    assert rig.run_next() == bulk[:CHUNK]


def test_backlogged_teams_are_served_in_proportion_to_their_weights(
    rig: Rig, db_engine: sa.Engine
) -> None:
    heavy = make_team_key(db_engine, "weight-three", weight=3)
    light = make_team_key(db_engine, "weight-one", weight=1)
    rig.add_batch(heavy, 400)
    rig.add_batch(light, 400)
    served = [rig.team_of[rig.run_next()[0]] for _ in range(80)]
    # Past the first window, every 4 chunks are 3 of the heavy team's and 1 of the light's.
    assert served[4:].count("weight-three") == 57
    assert served[4:].count("weight-one") == 19


def test_a_team_alone_gets_everything(rig: Rig, team: TeamKey) -> None:
    rig.add_batch(team, 40)
    assert {rig.team_of[rig.run_next()[0]] for _ in range(10)} == {team.name}
    assert rig.waiting() == 0


def test_a_newcomer_is_not_held_behind_a_backlog(
    rig: Rig, team: TeamKey, other_team: TeamKey
) -> None:
    rig.add_batch(team, 2000)
    for _ in range(20):
        rig.run_next()
    small = rig.add_batch(other_team, 3 * CHUNK)
    order = [rig.team_of[rig.run_next()[0]] for _ in range(8)]
    a, b = team.name, other_team.name
    # The two chunks the backlog had in the broker when the newcomer arrived run first.
    # The newcomer is credited the jobs then in flight (those two and the running one: 8),
    # so its first two chunks go next, and the third too: at equal passes the team that has
    # had less since it came goes first. Then the backlog has the worker to itself again.
    assert order == [a, a, b, b, b, a, a, a]
    with rig.session_factory() as session:
        statuses = session.scalars(
            sa.text("SELECT DISTINCT status FROM jobs WHERE id = ANY(:ids)"), {"ids": small}
        ).all()
    assert statuses == [JobStatus.SUCCEEDED]


def test_max_running_holds_a_team_to_its_limit(rig: Rig, db_engine: sa.Engine) -> None:
    capped = make_team_key(db_engine, "capped-at-six", max_running=6)
    rig.add_batch(capped, 20)
    rig.dispatcher.refill()
    first, second = rig.take(), rig.take()
    assert first is not None and second is not None
    assert (len(first), len(second)) == (CHUNK, 6 - CHUNK)  # 6 in flight
    assert rig.dispatcher.refill() == 0 and rig.take() is None
    rig.finish(first)  # 4 of them ended: 4 places
    rig.dispatcher.refill()
    assert len(rig.take() or []) == CHUNK
    assert rig.dispatcher.refill() == 0


def test_a_lost_window_is_rebuilt_from_postgres(rig: Rig, team: TeamKey) -> None:
    ids = rig.add_batch(team, 8)
    rig.dispatcher.refill()
    assert rig.waiting() == 0
    rig.broker.flushdb()  # FLUSHALL: the window is gone
    report = rig.dispatcher.maintain()
    assert report.returned == 8 and rig.waiting() == 8
    rig.dispatcher.refill()
    assert rig.take() == ids[:CHUNK] and rig.take() == ids[CHUNK:]


def test_a_chunk_the_broker_refuses_waits_again(
    settings: Settings, team: TeamKey, free_port: object
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"  # type: ignore[operator]
    engine = database_engine(settings)
    factory = make_session_factory(engine)
    dead_broker = create_celery_app(settings.model_copy(update={"redis_url": closed}))
    broker = broker_client(settings)
    try:
        rig = Rig(Dispatcher(settings, engine, factory, dead_broker, broker), factory, broker, {})
        rig.add_batch(team, 3)
        assert rig.dispatcher.refill() == 0
        assert rig.waiting() == 3
    finally:
        dead_broker.close()
        broker.close()
        engine.dispose()


def test_an_expired_lease_puts_the_job_back_to_wait(rig: Rig, team: TeamKey) -> None:
    [job_id] = rig.add_batch(team, 1)
    rig.dispatcher.refill()
    rig.take()
    with rig.session_factory.begin() as session:
        session.execute(
            sa.text(
                "UPDATE jobs SET status = 'running', attempts = 1, "
                "lease_expires_at = now() - interval '1 second' WHERE id = :id"
            ),
            {"id": job_id},
        )
    assert rig.dispatcher.maintain().reaped == 1
    with rig.session_factory() as session:
        status, dispatched = session.execute(
            sa.text("SELECT status, dispatched_at FROM jobs WHERE id = :id"), {"id": job_id}
        ).one()
    assert (status, dispatched) == (JobStatus.QUEUED, None)
    rig.dispatcher.refill()
    assert rig.take() == [job_id]
