"""Retention: a team's artifacts and files expire after its retention (or the deployment's
default); past it the API answers 410 saying so, and the dispatcher's maintenance round
deletes the bytes in bounded batches and marks the rows, with the local store and with
S3. A store error leaves the rows for the next round."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from aigc.cli.main import app as cli
from aigc.connections import broker_client, database_engine
from aigc.settings import Settings, get_settings
from aigc.storage import ArtifactStore, open_store
from api.main import create_app
from db import jobs as job_queries
from db.result_cache import record_hit
from db.session import make_session_factory
from db.tables import Job
from tests.conftest import TeamKey, make_team_key
from tests.storage.conftest import WORKER, S3Server, record_artifact
from workers.celery_app import create_celery_app
from workers.dispatcher import Dispatcher

# Two seconds: long enough for a loaded machine to read a row before it expires.
RETENTION_S = 2


@pytest.fixture(scope="session")
def short_team(db_engine: sa.Engine) -> TeamKey:
    """A team that keeps artifacts and files for RETENTION_S seconds."""
    return make_team_key(
        db_engine, "short-lived", artifact_retention_s=RETENTION_S, file_retention_s=RETENTION_S
    )


@pytest.fixture(params=["local", "s3"])
def store_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "local":
        return settings
    server: S3Server = request.getfixturevalue("s3_server")
    return server.settings(settings)


@pytest.fixture
def api(store_settings: Settings, short_team: TeamKey, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(store_settings.model_copy(update={"var_dir": tmp_path}))
    with TestClient(app, headers=short_team.headers) as client:
        yield client


@contextmanager
def dispatcher(settings: Settings, store: ArtifactStore | None = None) -> Iterator[Dispatcher]:
    engine = database_engine(settings)
    broker = broker_client(settings)
    celery = create_celery_app(settings)
    try:
        yield Dispatcher(settings, engine, make_session_factory(engine), celery, broker, store)
    finally:
        celery.close()
        broker.close()
        engine.dispose()


def _store(client: TestClient) -> ArtifactStore:
    return client.app.state.store  # type: ignore[attr-defined,no-any-return]


def _wait_past(when: datetime) -> None:
    time.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()) + 0.05)


def _purged_at(engine: sa.Engine, table: str, row_id: object) -> datetime | None:
    with engine.connect() as conn:
        value: datetime | None = conn.execute(
            sa.text(f"SELECT purged_at FROM {table} WHERE id = :id"), {"id": row_id}
        ).scalar_one()
        return value


def _assert_gone(response: Any, what: str) -> None:
    assert response.status_code == 410, response.text
    error = response.json()["error"]
    assert error["type"] == "gone"
    assert what in error["message"]
    assert "expired at" in error["message"] and "retention" in error["message"]


def test_expired_artifact_answers_410_and_is_swept(
    api: TestClient, store_settings: Settings, db_engine: sa.Engine, short_team: TeamKey
) -> None:
    store = _store(api)
    recorded = record_artifact(db_engine, store, short_team, b"short-lived")
    sidecar = recorded.storage_key + ".label.json"  # a text artifact's label goes with it
    store.put(sidecar, b"{}")
    job = api.get(f"/v1/jobs/{recorded.job_id}").json()
    [artifact] = job["artifacts"]
    expires_at = datetime.fromisoformat(artifact["expires_at"])
    assert job["expires_at"] == artifact["expires_at"]
    lifetime = expires_at - datetime.fromisoformat(job["finished_at"])
    assert timedelta(0) < lifetime <= timedelta(seconds=RETENTION_S, milliseconds=10)
    path = f"/v1/artifacts/{recorded.artifact_id}/content"
    asked_at = datetime.now(UTC)
    served = api.get(path, follow_redirects=False).status_code
    # Served while it lives; a machine too loaded to ask in time says nothing of that.
    if asked_at < expires_at - timedelta(seconds=0.5):
        assert served in (200, 307)

    _wait_past(expires_at)
    _assert_gone(api.get(path, follow_redirects=False), f"artifact {recorded.artifact_id}")
    # The job still reads, its artifact's URL now the API's own, which says why it is gone.
    [artifact] = api.get(f"/v1/jobs/{recorded.job_id}").json()["artifacts"]
    assert artifact["url"].startswith("http://testserver/v1/artifacts/")
    assert store.exists(recorded.storage_key)  # until the sweep

    with dispatcher(store_settings, store) as sweeper:
        assert sweeper.maintain().expired_objects == 1
        assert not store.exists(recorded.storage_key) and not store.exists(sidecar)
        assert _purged_at(db_engine, "artifacts", recorded.artifact_id) is not None
        assert sweeper.maintain().expired_objects == 0  # swept once
    _assert_gone(api.get(path), f"artifact {recorded.artifact_id}")


def test_expired_file_answers_410_and_is_swept(
    api: TestClient, store_settings: Settings, db_engine: sa.Engine
) -> None:
    uploaded = api.post(
        "/v1/files", files={"file": ("in.jsonl", b"{}\n")}, data={"purpose": "batch"}
    ).json()
    assert uploaded["expires_at"] - uploaded["created_at"] in (RETENTION_S, RETENTION_S + 1)
    _wait_past(datetime.fromtimestamp(uploaded["expires_at"] + 1, UTC))
    _assert_gone(api.get(f"/v1/files/{uploaded['id']}/content"), f"file {uploaded['id']}")
    assert api.get(f"/v1/files/{uploaded['id']}").status_code == 200  # the row stays
    # Expired, not yet swept: no batch is made from it either.
    refused = api.post(
        "/v1/batches",
        json={
            "input_file_id": uploaded["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["errors"][0]["field"] == "input_file_id"
    store = _store(api)
    with dispatcher(store_settings, store) as sweeper:
        assert sweeper.maintain().expired_objects == 1
    assert not store.exists(f"files/{uploaded['id']}")
    assert _purged_at(db_engine, "files", uploaded["id"]) is not None


def test_deployment_default_applies_to_teams_without_retention(
    settings: Settings, db_engine: sa.Engine, team: TeamKey, short_team: TeamKey
) -> None:
    store = open_store(settings)
    for owner, expected_s in ((team, 3600), (short_team, RETENTION_S)):
        recorded = record_artifact(db_engine, store, owner, retention_s=3600)
        with db_engine.connect() as conn:
            lifetime = conn.execute(
                sa.text(
                    "SELECT a.expires_at - j.finished_at FROM artifacts a "
                    "JOIN jobs j ON j.id = a.job_id WHERE a.id = :id"
                ),
                {"id": recorded.artifact_id},
            ).scalar_one()
        assert lifetime == timedelta(seconds=expected_s)


def test_a_store_error_leaves_the_rows_for_the_next_round(
    settings: Settings,
    s3_settings: Settings,
    db_engine: sa.Engine,
    short_team: TeamKey,
    free_port: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = open_store(settings)
    recorded = record_artifact(db_engine, store, short_team)
    time.sleep(RETENTION_S + 0.05)
    stopped = open_store(
        s3_settings.model_copy(
            update={
                "s3_endpoint_url": f"http://127.0.0.1:{free_port()}",
                "s3_connect_timeout_s": 0.5,
            }
        )
    )
    with dispatcher(settings, stopped) as sweeper, caplog.at_level(logging.WARNING):
        assert sweeper.maintain().expired_objects == 0
        assert "retention sweep paused" in caplog.text
        caplog.clear()
        # Paused after the error: the next round does not try the store again.
        assert sweeper.maintain().expired_objects == 0
        assert "retention" not in caplog.text
    assert _purged_at(db_engine, "artifacts", recorded.artifact_id) is None
    assert store.exists(recorded.storage_key)
    with dispatcher(settings, store) as sweeper:
        assert sweeper.maintain().expired_objects == 1
    assert not store.exists(recorded.storage_key)


def test_the_sweep_is_bounded_per_round(
    settings: Settings, db_engine: sa.Engine, short_team: TeamKey
) -> None:
    store = open_store(settings)
    keys = [record_artifact(db_engine, store, short_team).storage_key for _ in range(5)]
    time.sleep(RETENTION_S + 0.05)
    with dispatcher(settings.model_copy(update={"retention_sweep_rows": 2}), store) as sweeper:
        assert [sweeper.maintain().expired_objects for _ in range(4)] == [2, 2, 1, 0]
    assert not any(store.exists(key) for key in keys)


def test_stored_batch_results_expire_with_the_teams_artifacts(
    settings: Settings, db_engine: sa.Engine, short_team: TeamKey
) -> None:
    with TestClient(create_app(settings), headers=short_team.headers) as client:
        jobs = [{"kind": "text", "model": "echo", "prompt": f"p{n}"} for n in range(2)]
        batch = client.post("/v1/batches", json={"jobs": jobs}).json()
        _finish_batch(db_engine, open_store(settings), uuid.UUID(batch["id"]))
        results = client.get(f"/v1/batches/{batch['id']}/results")
        assert results.status_code == 200
        assert [json.loads(line)["status"] for line in results.text.splitlines()] == [
            "succeeded"
        ] * 2
        with db_engine.connect() as conn:
            key, expires_at = conn.execute(
                sa.text("SELECT results_key, expires_at FROM batches WHERE id = :id"),
                {"id": batch["id"]},
            ).one()
        assert key is not None and expires_at is not None
        _wait_past(expires_at)
        _assert_gone(client.get(f"/v1/batches/{batch['id']}/results"), "batch")
        store = open_store(settings)
        with dispatcher(settings, store) as sweeper:
            # Two artifacts and the results.
            assert sweeper.maintain().expired_objects == 3
        assert not store.exists(key)
        _assert_gone(client.get(f"/v1/batches/{batch['id']}/results"), "batch")


def test_a_retried_batch_gets_results_again_after_they_expired(
    settings: Settings, db_engine: sa.Engine, short_team: TeamKey
) -> None:
    store = open_store(settings)
    with TestClient(create_app(settings), headers=short_team.headers) as client:
        jobs = [{"kind": "text", "model": "echo", "prompt": f"p{n}"} for n in range(2)]
        batch_id = client.post("/v1/batches", json={"jobs": jobs}).json()["id"]
        _finish_batch(db_engine, store, uuid.UUID(batch_id), fail_last=True)
        assert client.get(f"/v1/batches/{batch_id}/results").status_code == 200
        time.sleep(RETENTION_S + 0.05)
        _assert_gone(client.get(f"/v1/batches/{batch_id}/results"), "batch")
        with dispatcher(settings, store) as sweeper:
            sweeper.maintain()
        assert client.post(f"/v1/batches/{batch_id}/retry").status_code == 200
        # Running again: its results are streamed as they stand (no expiry yet)...
        running = client.get(f"/v1/batches/{batch_id}/results")
        assert running.status_code == 200
        assert [json.loads(line)["status"] for line in running.text.splitlines()] == [
            "succeeded",
            "queued",
        ]
        # ...and stored anew, with a new expiry, once it has finished again.
        _finish_batch(db_engine, store, uuid.UUID(batch_id))
        again = client.get(f"/v1/batches/{batch_id}/results")
        assert again.status_code == 200
        assert [json.loads(line)["status"] for line in again.text.splitlines()] == [
            "succeeded",
            "succeeded",
        ]


def _finish_batch(
    engine: sa.Engine, store: ArtifactStore, batch_id: uuid.UUID, *, fail_last: bool = False
) -> list[uuid.UUID]:
    """Run the batch's queued jobs as a worker records them: claimed, text stored,
    succeeded (the last one failed, with `fail_last`). Returns their ids."""
    with Session(engine) as session, session.begin():
        ids = list(
            session.scalars(
                sa.text("SELECT id FROM jobs WHERE batch_id = :id AND status = 'queued'"),
                {"id": batch_id},
            )
        )
        claimed = job_queries.claim_jobs(session, ids, worker=WORKER, lease_s=60)
        if fail_last:
            failing = claimed.pop()
            job_queries.fail_job(
                session, failing.id, worker=WORKER, attempt=failing.attempts,
                error_code="generation_failed", error_message="test",
            )  # fmt: skip
        artifacts = {}
        for job in claimed:
            key = f"jobs/{job.id.hex[:8]}/{job.id}-{job.attempts}-0.txt"
            store.put(key, job.prompt.encode())
            artifacts[job.id] = [
                job_queries.NewArtifact(
                    index=0,
                    mime_type="text/plain; charset=utf-8",
                    size_bytes=len(job.prompt),
                    sha256="0" * 64,
                    storage_key=key,
                    facts={},
                )  # fmt: skip
            ]
        job_queries.succeed_jobs(
            session,
            worker=WORKER,
            runs={job.id: job.attempts for job in claimed},
            artifacts=artifacts,
        )
    return ids


# Setting a team's retention ------------------------------------------------------------


def test_admin_api_sets_and_bounds_retention(client_admin: TestClient, admin: TeamKey) -> None:
    name = f"ret-{uuid.uuid4().hex[:8]}"
    created = client_admin.post(
        "/v1/admin/teams", json={"name": name, "artifact_retention_s": 86400}
    )
    assert created.status_code == 201, created.text
    assert (created.json()["artifact_retention_s"], created.json()["file_retention_s"]) == (
        86400,
        None,
    )
    updated = client_admin.patch(
        f"/v1/admin/teams/{name}", json={"file_retention_s": 3600, "artifact_retention_s": None}
    )
    assert (updated.json()["artifact_retention_s"], updated.json()["file_retention_s"]) == (
        None,
        3600,
    )
    for field, value in (("artifact_retention_s", 0), ("file_retention_s", 10**12)):
        refused = client_admin.patch(f"/v1/admin/teams/{name}", json={field: value})
        assert refused.status_code == 422
        assert [error["field"] for error in refused.json()["error"]["errors"]] == [field]


@pytest.fixture
def client_admin(settings: Settings, admin: TeamKey) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=admin.headers) as client:
        yield client


@pytest.fixture
def operator(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    monkeypatch.setenv("AIGC_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_sets_retention_in_durations(operator: None) -> None:
    runner = CliRunner()
    name = f"ret-{uuid.uuid4().hex[:8]}"
    created = runner.invoke(cli, ["teams", "create", name, "--artifact-retention", "30d"])
    assert created.exit_code == 0, created.output
    row = next(line for line in created.stdout.splitlines() if name in line)
    assert "30d" in row
    updated = runner.invoke(
        cli, ["teams", "update", name, "--artifact-retention", "none", "--file-retention", "12h"]
    )
    assert updated.exit_code == 0, updated.output
    cells = [
        c.strip()
        for c in next(line for line in updated.stdout.splitlines() if name in line)
        .strip("│ ")
        .split("│")
    ]
    assert cells[5:7] == ["-", "12h"]
    for bad in ("0", "ten days", "-5d", "99999d"):
        refused = runner.invoke(cli, ["teams", "update", name, "--file-retention", bad])
        assert refused.exit_code == 2, refused.output
        assert "--file-retention" in refused.stderr


def test_shared_bytes_stay_while_a_cache_hit_serves_them(
    settings: Settings, db_engine: sa.Engine, short_team: TeamKey
) -> None:
    """A cache hit's artifact shares its source's bytes: the source's expiry does not delete
    them while the hit's row lives; the last row to expire takes them."""
    store = open_store(settings)
    source = record_artifact(db_engine, store, short_team, b"shared bytes")
    with Session(db_engine) as session, session.begin():
        source_job = session.get(Job, source.job_id)
        assert source_job is not None
        hit_id = record_hit(
            session,
            source_job,
            key_prefix=short_team.prefix,
            metadata={},
            priority="normal",
            webhook=None,
            webhook_events_filter=None,
            retention_s=None,
        )
    with db_engine.begin() as conn:
        # The hit outlives its source (as one made later does).
        hit_artifact = conn.execute(
            sa.text(
                "UPDATE artifacts SET expires_at = now() + interval '1 hour' "
                "WHERE job_id = :id RETURNING id"
            ),
            {"id": hit_id},
        ).scalar_one()
    time.sleep(RETENTION_S + 0.05)

    with (
        dispatcher(settings, store) as sweeper,
        TestClient(create_app(settings), headers=short_team.headers) as api,
    ):
        assert sweeper.maintain().expired_objects == 0
        assert store.exists(source.storage_key)
        assert api.get(f"/v1/artifacts/{hit_artifact}/content").content == b"shared bytes"
        _assert_gone(
            api.get(f"/v1/artifacts/{source.artifact_id}/content"),
            f"artifact {source.artifact_id}",
        )

        with db_engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE artifacts SET expires_at = now() WHERE id = :id"),
                {"id": hit_artifact},
            )
        assert sweeper.maintain().expired_objects == 2  # both rows, the bytes once
        assert not store.exists(source.storage_key)
        assert _purged_at(db_engine, "artifacts", source.artifact_id) is not None
        assert _purged_at(db_engine, "artifacts", hit_artifact) is not None
