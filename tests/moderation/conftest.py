"""A dispatcher on the real PostgreSQL and Redis, driven a round at a time, and rules
written straight into the database as the API writes them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from aigc.connections import broker_client, database_engine
from aigc.settings import Settings
from db.batches import NewJob, create_batch
from db.session import make_session_factory
from db.tables import AuditEvent, Job, ModerationRule
from tests.conftest import TeamKey
from workers.celery_app import create_celery_app
from workers.dispatcher import Dispatcher, job_ids_in_message
from workers.routing import ALL_QUEUES


@dataclass
class Rig:
    dispatcher: Dispatcher
    session_factory: sessionmaker[Session]
    broker: redis.Redis

    def add_rule(self, team: TeamKey | None, kind: str = "terms", **body: Any) -> uuid.UUID:
        with self.session_factory.begin() as session:
            row = ModerationRule(
                team_id=team.team_id if team else None,
                name=body.pop("name", "test-rule"),
                kind=kind,
                reason_code=body.pop("reason_code", "test"),
                **body,
            )
            session.add(row)
            session.flush()
            return row.id

    def add_batch(self, team: TeamKey, jobs: list[tuple[str, dict[str, Any]]]) -> list[uuid.UUID]:
        with self.session_factory.begin() as session:
            _, ids = create_batch(
                session,
                jobs=[NewJob("text", "echo", prompt, params, {}) for prompt, params in jobs],
                priority="normal",
                metadata={},
                team_id=team.team_id,
            )
        return ids

    def sent(self) -> list[uuid.UUID]:
        """Every job id in a message on the broker (what workers would run), emptying it."""
        ids: list[uuid.UUID] = []
        for queue in ALL_QUEUES:
            while (raw := self.broker.rpop(queue)) is not None:
                ids += [uuid.UUID(i) for i in job_ids_in_message(raw)]  # type: ignore[arg-type]
        return ids

    def jobs(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, Job]:
        with self.session_factory() as session:
            rows = session.scalars(select(Job).where(Job.id.in_(ids)))
            return {job.id: job for job in rows}

    def audit(self, action: str) -> list[AuditEvent]:
        with self.session_factory() as session:
            return list(
                session.scalars(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            )


@pytest.fixture
def rig(settings: Settings) -> Iterator[Rig]:
    tuned = settings.model_copy(update={"chunk_sizes": {"text": 4}, "dispatch_window": 100})
    engine = database_engine(tuned)
    broker = broker_client(tuned)
    celery = create_celery_app(tuned)
    try:
        yield Rig(
            Dispatcher(tuned, engine, make_session_factory(engine), celery, broker),
            make_session_factory(engine),
            broker,
        )
    finally:
        celery.close()
        broker.close()
        engine.dispose()
