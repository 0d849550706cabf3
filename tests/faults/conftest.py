"""A whole stack per test on servers the test may stop, kill or empty: an embedded
PostgreSQL and an embedded Valkey (append-only), the API, a dispatcher and workers, with
short leases so a dead worker's jobs come back within seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from aigc.cli.stack import spawn, stop_process, wait_for_http
from aigc.servers import EmbeddedPostgres, EmbeddedValkey
from aigc.storage import LocalStore
from db.migrate import upgrade
from tests.conftest import make_team_key

FAST_RELIABILITY = {
    "AIGC_LEASE_S": "2",
    "AIGC_DISPATCH_INTERVAL_S": "0.5",
    "AIGC_DISPATCH_GRACE_S": "1",
    "AIGC_VISIBILITY_TIMEOUT_S": "30",
    "AIGC_MAX_ATTEMPTS": "5",
    "AIGC_PRELOAD_MODELS": "true",
}


@dataclass
class FaultStack:
    root: Path
    env: dict[str, str]
    postgres: EmbeddedPostgres
    valkey: EmbeddedValkey
    api_url: str
    client: httpx.Client
    engine: sa.Engine
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_worker(self, name: str, kinds: str = "text,image,audio") -> subprocess.Popen[bytes]:
        self.processes[name] = spawn(name, ["worker", "--queues", kinds], self.env)
        return self.processes[name]

    def kill(self, name: str) -> None:
        """kill -9: no shutdown handler runs, nothing is acknowledged or released."""
        proc = self.processes[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def statuses(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(
                conn.execute(sa.text("SELECT status, count(*) FROM jobs GROUP BY status")).all()
            )  # type: ignore[arg-type]

    def artifact_rows_per_job(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT j.id::text, count(a.id) FROM jobs j"
                    " LEFT JOIN artifacts a ON a.job_id = j.id GROUP BY j.id"
                )
            ).all()
        return {job_id: count for job_id, count in rows}

    def report(self, fault: str, submitted: int, fault_at: float) -> None:
        """Append this fault's outcome to $AIGC_FAULT_REPORT (JSON lines) when it is set:
        the figures behind the reliability table in the README."""
        path = os.environ.get("AIGC_FAULT_REPORT")
        if not path:
            return
        with self.engine.connect() as conn:
            succeeded, last_finish = conn.execute(
                sa.text(
                    "SELECT count(*) FILTER (WHERE status = 'succeeded'),"
                    " extract(epoch FROM max(finished_at)) FROM jobs"
                )
            ).one()
            artifact_rows = conn.execute(sa.text("SELECT count(*) FROM artifacts")).scalar_one()
        line = {
            "fault": fault,
            "submitted": submitted,
            "succeeded": succeeded,
            "duplicates": artifact_rows - succeeded,
            "lost": submitted - succeeded,
            "seconds_to_all_done_after_fault": round(float(last_finish) - fault_at, 1),
        }
        with open(path, "a") as out:
            out.write(json.dumps(line) + "\n")

    def stored_artifacts_match_rows(self) -> bool:
        """Every artifact row's bytes are in the store with the recorded sha256."""
        import hashlib

        store = LocalStore(Path(self.env["AIGC_ARTIFACT_DIR"]))
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT storage_key, sha256 FROM artifacts")).all()
        for key, sha256 in rows:
            with store.open(key) as f:
                if hashlib.sha256(f.read()).hexdigest() != sha256:
                    return False
        return True


@pytest.fixture
def fault_stack(
    tmp_path: Path, tiny_models: Path, free_port: Callable[[], int]
) -> Iterator[FaultStack]:
    postgres = EmbeddedPostgres(tmp_path / "pg")
    valkey = EmbeddedValkey(tmp_path / "valkey", free_port())
    database_url = postgres.start()
    redis_url = valkey.start()
    upgrade(database_url)
    env = dict(os.environ)
    env.update(
        FAST_RELIABILITY,
        AIGC_DATABASE_URL=database_url,
        AIGC_REDIS_URL=redis_url,
        AIGC_ARTIFACT_DIR=str(tmp_path / "artifacts"),
        AIGC_MODEL_DIR=str(tiny_models),
        HF_HUB_OFFLINE="1",
    )
    port = free_port()
    engine = sa.create_engine(database_url, pool_pre_ping=True)
    # The stack's own database: its own team and key for the test's requests.
    caller = make_team_key(engine, "faults")
    stack = FaultStack(
        root=tmp_path,
        env=env,
        postgres=postgres,
        valkey=valkey,
        api_url=f"http://127.0.0.1:{port}",
        client=httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=30, headers=caller.headers
        ),
        engine=engine,
    )
    stack.processes["api"] = spawn("api", ["api", "--port", str(port)], env)
    stack.processes["dispatcher"] = spawn("dispatcher", ["dispatcher"], env)
    try:
        wait_for_http(f"{stack.api_url}/healthz", 60, stack.processes["api"])
        yield stack
    finally:
        for proc in stack.processes.values():
            stop_process(proc, grace_s=10)
        stack.client.close()
        engine.dispose()
        valkey.stop()
        postgres.stop()
