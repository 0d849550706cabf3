"""Real services for the tests: the machine's PostgreSQL and Redis where they answer, else the
embedded ones from PyPI wheels (set AIGC_TEST_EMBEDDED=1 to force those). Each test starts
from empty tables and an empty Redis database."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from aigc import servers
from aigc.servers import EmbeddedPostgres, EmbeddedValkey, port_open
from aigc.settings import Settings
from aigc.vocab import Role
from db import teams as team_queries
from db.migrate import upgrade

os.environ["HF_HUB_OFFLINE"] = "1"

LOCAL_POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LOCAL_REDIS = ("127.0.0.1", 6379)
# Away from db 0, which a developer's own stack may use; concurrent test runs set their own.
TEST_REDIS_DB = int(os.environ.get("AIGC_TEST_REDIS_DB", "11"))


def _use_embedded() -> bool:
    return os.environ.get("AIGC_TEST_EMBEDDED") == "1"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database for this test session."""
    if not _use_embedded() and port_open("127.0.0.1", 5432):
        name = f"aigc_test_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(LOCAL_POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = LOCAL_POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        upgrade(url)
        yield url
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    else:
        with EmbeddedPostgres(tmp_path_factory.mktemp("pg")) as server:
            upgrade(server.url)
            yield server.url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not _use_embedded() and port_open(*LOCAL_REDIS):
        yield f"redis://{LOCAL_REDIS[0]}:{LOCAL_REDIS[1]}/{TEST_REDIS_DB}"
    else:
        port = servers.free_port()
        with EmbeddedValkey(tmp_path_factory.mktemp("valkey"), port) as server:
            yield server.url


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """A function giving a TCP port nothing listens on."""
    return servers.free_port


@pytest.fixture(scope="session")
def db_engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


@dataclass(frozen=True)
class TeamKey:
    """A team made for the test session and one of its API keys."""

    team_id: uuid.UUID
    name: str
    key: str
    prefix: str

    @property
    def headers(self) -> dict[str, str]:
        return auth_headers(self.key)


def auth_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_team_key(engine: sa.Engine, team: str, role: Role = Role.MEMBER, **limits: Any) -> TeamKey:
    """A key (and its team, made if new) straight in the database, as `aigc keys create`."""
    with Session(engine) as session, session.begin():
        row = team_queries.get_team(session, team) or team_queries.create_team(
            session, name=team, **limits
        )
        key, new = team_queries.create_key(session, team=row, role=role, name="tests")
        return TeamKey(team_id=row.id, name=team, key=new.key, prefix=key.prefix)


@pytest.fixture(scope="session")
def team(db_engine: sa.Engine) -> TeamKey:
    """The team most tests work as, with a member key. Teams outlive each test's clean
    state, so a session-wide API process keeps its key."""
    return make_team_key(db_engine, "alpha")


@pytest.fixture(scope="session")
def other_team(db_engine: sa.Engine) -> TeamKey:
    """A second team, for isolation tests."""
    return make_team_key(db_engine, "bravo")


@pytest.fixture(scope="session")
def admin(db_engine: sa.Engine) -> TeamKey:
    return make_team_key(db_engine, "operators", Role.ADMIN)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_models(model_dir: Path) -> Path:
    """Tiny models, built once per session and shared by every worker the tests start."""
    from models.registry import TINY_MODELS
    from models.tiny import ensure_tiny_model

    for spec in TINY_MODELS:
        ensure_tiny_model(spec.name, model_dir)
    return model_dir


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's AIGC_VAR_DIR (its URL-signing key lives there), not the checkout's."""
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture
def clean_state(db_engine: sa.Engine, redis_url: str) -> None:
    """Empty tables and an empty Redis database before the test."""
    with db_engine.begin() as conn:
        conn.exec_driver_sql(
            "TRUNCATE jobs, artifacts, batches, files, idempotency_keys, job_events, "
            "webhook_endpoints, webhook_secrets, webhook_deliveries, webhook_attempts, "
            "moderation_rules CASCADE"
        )
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


@pytest.fixture
def settings(
    database_url: str,
    redis_url: str,
    artifact_dir: Path,
    model_dir: Path,
    var_dir: Path,
    clean_state: None,
) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        artifact_dir=artifact_dir,
        model_dir=model_dir,
        var_dir=var_dir,
        profile="offline",
    )


def count_jobs(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one())


def waiting_jobs(settings: Settings) -> int:
    """Jobs queued in PostgreSQL that the dispatcher has not sent to the broker yet."""
    engine = sa.create_engine(settings.database_url or "")
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM jobs "
                        "WHERE status = 'queued' AND dispatched_at IS NULL"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def chat_completion_lines(count: int) -> bytes:
    """An OpenAI batch input file of `count` chat completions for the echo model."""
    return "".join(
        json.dumps(
            {
                "custom_id": f"r{n}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "echo", "messages": [{"role": "user", "content": f"hi {n}"}]},
            }
        )
        + "\n"
        for n in range(count)
    ).encode()
