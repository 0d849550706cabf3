"""PostgreSQL, Redis and the processes the benchmarks drive, set up as the tests do: the
machine's servers where they answer (a fresh database, a flushed Redis db), else embedded
ones; dropped or stopped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
import sqlalchemy as sa
from celery import Celery
from kombu import Producer
from sqlalchemy.orm import Session

from aigc.cli.stack import spawn, stop_process, wait_for_http
from aigc.servers import EmbeddedPostgres, EmbeddedValkey, free_port, port_open
from db import teams as team_queries
from db.migrate import upgrade

LOCAL_POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LOCAL_REDIS = ("127.0.0.1", 6379)
BENCH_REDIS_DB = 10  # away from a developer's db 0 and the test runs' dbs
START_TIMEOUT_S = 120.0  # cold imports on a busy 2-core machine
BENCH_TEAM = "bench"
REPO_ROOT = (
    Path(__file__).resolve().parents[1]
)  # the team whose member key every benchmark request sends


@dataclass(frozen=True)
class Services:
    database_url: str
    redis_url: str
    postgres: str  # "local" or "embedded"
    redis: str
    work_dir: Path  # artifacts and models of the processes under test
    log_dir: Path  # their output, one file per process
    team_id: uuid.UUID  # the benchmark team: what its jobs belong to
    api_key: str  # a member key of that team

    @property
    def headers(self) -> dict[str, str]:
        """What every HTTP request of a benchmark sends, as a client of a team would."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process of the stack under test."""
        env = dict(os.environ)
        env.update(
            AIGC_DATABASE_URL=self.database_url,
            AIGC_REDIS_URL=self.redis_url,
            AIGC_ARTIFACT_DIR=str(self.work_dir / "artifacts"),
            AIGC_MODEL_DIR=str(self.work_dir / "models"),
            AIGC_PROFILE="offline",
            HF_HUB_OFFLINE="1",
            **extra,
        )
        return env

    def reset(self) -> None:
        """Empty tables and broker between benchmarks, so none sees another's leftovers."""
        engine = sa.create_engine(self.database_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE jobs, artifacts, batches CASCADE")
        engine.dispose()
        client = redis.Redis.from_url(self.redis_url)
        client.flushdb()
        client.close()


@contextmanager
def _local_database() -> Iterator[str]:
    name = f"aigc_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(LOCAL_POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield LOCAL_POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _team_key(database_url: str) -> tuple[uuid.UUID, str]:
    """The benchmark's team and a member key of it, as `aigc keys create` makes them."""
    engine = sa.create_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            team = team_queries.create_team(session, name=BENCH_TEAM)
            _, new = team_queries.create_key(session, team=team, name="benchmarks")
            return team.id, new.key
    finally:
        engine.dispose()


@contextmanager
def running_services(
    work_dir: Path, log_dir: Path, *, embedded: bool = False
) -> Iterator[Services]:
    with ExitStack() as cleanup:
        if not embedded and port_open("127.0.0.1", 5432):
            postgres, database_url = "local", cleanup.enter_context(_local_database())
        else:
            server = cleanup.enter_context(EmbeddedPostgres(work_dir / "postgres"))
            postgres, database_url = "embedded", server.url
        if not embedded and port_open(*LOCAL_REDIS):
            host, port = LOCAL_REDIS
            redis_kind, redis_url = "local", f"redis://{host}:{port}/{BENCH_REDIS_DB}"
        else:
            valkey = cleanup.enter_context(EmbeddedValkey(work_dir / "valkey", free_port()))
            redis_kind, redis_url = "embedded", valkey.url
        upgrade(database_url)
        team_id, key = _team_key(database_url)
        services = Services(
            database_url, redis_url, postgres, redis_kind, work_dir, log_dir, team_id, key
        )
        services.reset()
        cleanup.callback(services.reset)
        yield services


@contextmanager
def child(
    name: str, args: list[str], env: dict[str, str], log_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m aigc <args>`, stopped (gracefully, then killed) on exit."""
    proc = spawn(name, args, env, log_dir)
    try:
        yield proc
    finally:
        stop_process(proc)


@contextmanager
def module_child(
    name: str, module_args: list[str], env: dict[str, str], log_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m <module_args>` (a process that is not an `aigc` command), stopped on exit."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{name}.log").open("ab") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", *module_args],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop_process(proc)


@contextmanager
def api_process(services: Services, env: dict[str, str]) -> Iterator[str]:
    """An API process; yields its base URL once it answers."""
    port = free_port()
    args = ["api", "--host", "127.0.0.1", "--port", str(port)]
    with child("api", args, env, services.log_dir) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/healthz", START_TIMEOUT_S, proc)
        yield url


@dataclass(frozen=True)
class JobStack:
    """The processes that run jobs: an API (its URL), a dispatcher and a worker."""

    url: str
    worker: subprocess.Popen[bytes]


@contextmanager
def job_stack(services: Services, env: dict[str, str]) -> Iterator[JobStack]:
    """An API, the dispatcher (PostgreSQL is the queue: nothing runs without one) and one
    worker of the text queues, as real processes on these services."""
    with (
        api_process(services, env) as url,
        child("dispatcher", ["dispatcher"], env, services.log_dir),
        child("worker", ["worker", "--queues", "text"], env, services.log_dir) as worker,
    ):
        yield JobStack(url, worker)


@dataclass(frozen=True)
class NoopWorker:
    """The baseline's Celery app (a producer of it, on the benchmark Redis), its worker
    process and a Redis client to read what the tasks record."""

    app: Celery
    producer: Producer
    worker: subprocess.Popen[bytes]
    redis: redis.Redis


@contextmanager
def noop_worker(services: Services) -> Iterator[NoopWorker]:
    """A minimal Celery app's worker (benchmarks/noop_app.py) on the same Redis."""
    from benchmarks import noop_app

    app = noop_app.create_app(services.redis_url)
    client = redis.Redis.from_url(services.redis_url)
    # `benchmarks` is not an installed package: the child finds it from the repository root.
    env = services.env(PYTHONPATH=str(REPO_ROOT))
    args = ["benchmarks.noop_app", services.redis_url]
    try:
        with (
            module_child("noop-worker", args, env, services.log_dir) as worker,
            app.producer_or_acquire() as producer,
        ):
            yield NoopWorker(app, producer, worker, client)
    finally:
        client.close()
        app.close()


def wait_until(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    interval_s: float = 0.05,
) -> float:
    """Poll until `condition()`; returns the monotonic time it was first seen true."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done within {timeout_s:.0f}s")
        time.sleep(interval_s)
    return time.monotonic()
