"""Teams are isolated: another team's jobs, batches, files, artifacts, results and
idempotency keys are not there for a caller (404, never 403, and never in a list), an
admin key sees every team's, and each row records the team and key that made it.

The API runs in-process on the real PostgreSQL; `client` calls as team alpha, and a
request sent with `headers=other_team.headers` (bravo) or `admin.headers` replaces the key.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from aigc.settings import Settings
from aigc.storage import LocalStore
from api.main import create_app
from db import jobs as job_queries
from tests.conftest import TeamKey
from tests.live import isolated_broker, started_worker, wait_for_job

ECHO = {"kind": "text", "model": "echo", "prompt": "mine"}
CHAT_LINE = (
    b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",'
    b' "body": {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}}\n'
)


@dataclass(frozen=True)
class Rows:
    """One team's rows, made through the API (and the artifact as a worker records it)."""

    job: str  # queued
    canceled_job: str  # retryable
    done_job: str  # succeeded, with `artifact`
    artifact: str
    batch: str  # queued
    canceled_batch: str  # retryable with include_canceled
    file: str
    openai_batch: str


def _json(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _submit(client: TestClient, as_: TeamKey, **body: Any) -> str:
    return str(_json(client.post("/v1/jobs", json=body, headers=as_.headers), 202)["id"])


def _batch(client: TestClient, as_: TeamKey, count: int = 2) -> str:
    body = {"jobs": [{**ECHO, "prompt": f"line {n}"} for n in range(count)]}
    return str(_json(client.post("/v1/batches", json=body, headers=as_.headers), 202)["id"])


def _upload(client: TestClient, as_: TeamKey, data: bytes = CHAT_LINE) -> str:
    response = client.post(
        "/v1/files",
        files={"file": ("requests.jsonl", data, "application/jsonl")},
        data={"purpose": "batch"},
        headers=as_.headers,
    )
    return str(_json(response)["id"])


def _openai_batch(client: TestClient, as_: TeamKey, file_id: str) -> Any:
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    return client.post("/v1/batches", json=body, headers=as_.headers)


def _succeed_with_artifact(db_engine: sa.Engine, settings: Settings, job_id: str) -> str:
    """Run the job as a worker records it: claim, bytes in the store, succeed."""
    key = f"artifacts/{job_id}/0.txt"
    LocalStore(settings.artifact_dir).put(key, b"mine")
    artifact = job_queries.NewArtifact(
        index=0, mime_type="text/plain", size_bytes=4, sha256="0" * 64, storage_key=key, facts={}
    )
    run = uuid.UUID(job_id)
    with Session(db_engine) as session, session.begin():
        job_queries.claim_jobs(session, [run], worker="w", lease_s=60)
        job_queries.succeed_jobs(session, worker="w", runs={run: 1}, artifacts={run: [artifact]})
    with db_engine.connect() as conn:
        return str(
            conn.execute(
                sa.text("SELECT id FROM artifacts WHERE job_id = :id"), {"id": job_id}
            ).scalar_one()
        )


def _make_rows(client: TestClient, db_engine: sa.Engine, settings: Settings, as_: TeamKey) -> Rows:
    job = _submit(client, as_, **ECHO)
    canceled_job = _submit(client, as_, **ECHO)
    _json(client.post(f"/v1/jobs/{canceled_job}/cancel", headers=as_.headers))
    done_job = _submit(client, as_, **ECHO)
    artifact = _succeed_with_artifact(db_engine, settings, done_job)
    batch = _batch(client, as_)
    canceled_batch = _batch(client, as_)
    _json(client.post(f"/v1/batches/{canceled_batch}/cancel", headers=as_.headers))
    file = _upload(client, as_)
    openai_batch = str(_json(_openai_batch(client, as_, _upload(client, as_)), 202)["id"])
    return Rows(job, canceled_job, done_job, artifact, batch, canceled_batch, file, openai_batch)


@pytest.fixture
def alpha(client: TestClient, db_engine: sa.Engine, settings: Settings, team: TeamKey) -> Rows:
    return _make_rows(client, db_engine, settings, team)


@pytest.fixture
def bravo(
    client: TestClient, db_engine: sa.Engine, settings: Settings, other_team: TeamKey
) -> Rows:
    return _make_rows(client, db_engine, settings, other_team)


def _snapshot(db_engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every team-owned row's state, to show a refused request changed nothing."""
    queries = {
        "jobs": "SELECT id, status, attempts, finished_at FROM jobs ORDER BY id",
        "batches": "SELECT id, cancel_requested_at, output_file_id, error_file_id,"
        " results_key FROM batches ORDER BY id",
        "files": "SELECT id FROM files ORDER BY id",
        "artifacts": "SELECT id FROM artifacts ORDER BY id",
    }
    with db_engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.execute(sa.text(sql))]
            for table, sql in queries.items()
        }


def _id_routes(rows: Rows) -> list[tuple[str, str]]:
    """Every route that takes an id, with the team's id in it."""
    return [
        ("GET", f"/v1/jobs/{rows.job}"),
        ("POST", f"/v1/jobs/{rows.job}/cancel"),
        ("POST", f"/v1/jobs/{rows.canceled_job}/retry"),
        ("GET", f"/v1/batches/{rows.batch}"),
        ("GET", f"/v1/batches/{rows.openai_batch}"),
        ("POST", f"/v1/batches/{rows.batch}/cancel"),
        ("POST", f"/v1/batches/{rows.openai_batch}/cancel"),
        ("POST", f"/v1/batches/{rows.canceled_batch}/retry?include_canceled=true"),
        ("GET", f"/v1/batches/{rows.batch}/jobs"),
        ("GET", f"/v1/batches/{rows.batch}/results"),
        ("GET", f"/v1/files/{rows.file}"),
        ("GET", f"/v1/files/{rows.file}/content"),
        ("DELETE", f"/v1/files/{rows.file}"),
        ("GET", f"/v1/artifacts/{rows.artifact}/content"),
    ]


def test_another_teams_ids_are_404_everywhere_and_change_nothing(
    client: TestClient, alpha: Rows, other_team: TeamKey, db_engine: sa.Engine
) -> None:
    before = _snapshot(db_engine)
    for method, path in _id_routes(alpha):
        response = client.request(method, path, headers=other_team.headers)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["type"] == "not_found", (method, path)
    # Not canceled, not retried, not deleted: the refused requests did nothing.
    assert _snapshot(db_engine) == before


def test_another_teams_ids_answer_like_ids_that_do_not_exist(
    client: TestClient, alpha: Rows, other_team: TeamKey
) -> None:
    """The 404 says nothing a missing id would not: the id's existence does not leak."""
    missing = Rows(
        job=str(uuid.uuid4()),
        canceled_job=str(uuid.uuid4()),
        done_job=str(uuid.uuid4()),
        artifact=str(uuid.uuid4()),
        batch=str(uuid.uuid4()),
        canceled_batch=str(uuid.uuid4()),
        file=f"file-{uuid.uuid4().hex}",
        openai_batch=str(uuid.uuid4()),
    )
    for (method, theirs), (_, absent) in zip(_id_routes(alpha), _id_routes(missing), strict=True):
        seen = client.request(method, theirs, headers=other_team.headers)
        nothing = client.request(method, absent, headers=other_team.headers)
        assert seen.status_code == nothing.status_code == 404
        assert seen.json()["error"]["type"] == nothing.json()["error"]["type"]
        assert set(seen.headers) - {"content-length"} == set(nothing.headers) - {"content-length"}


def test_the_owner_and_an_admin_reach_the_same_ids(
    client: TestClient, alpha: Rows, team: TeamKey, admin: TeamKey
) -> None:
    reads = [(m, p) for m, p in _id_routes(alpha) if m == "GET"]
    for caller in (team, admin):
        for method, path in reads:
            response = client.request(method, path, headers=caller.headers)
            assert response.status_code == 200, (caller.name, path, response.text)


def test_lists_and_filters_show_only_the_callers_rows(
    client: TestClient, alpha: Rows, bravo: Rows, team: TeamKey, other_team: TeamKey
) -> None:
    for caller, mine, theirs in ((team, alpha, bravo), (other_team, bravo, alpha)):
        their_ids = {theirs.job, theirs.canceled_job, theirs.done_job}
        their_batches = {theirs.batch, theirs.canceled_batch, theirs.openai_batch}

        def job_ids(caller: TeamKey = caller, **query: Any) -> set[str]:
            params = {"limit": 100, **query}
            body = _json(client.get("/v1/jobs", params=params, headers=caller.headers))
            return {job["id"] for job in body["data"]}

        everything = job_ids()
        assert {mine.job, mine.canceled_job, mine.done_job} <= everything
        for query in (
            {},
            {"status": "queued"},
            {"status": "canceled"},
            {"status": "succeeded"},
            {"kind": "text"},
            {"status": "queued", "kind": "text"},
            # A cursor from the other team's ids pages through the caller's rows only.
            {"cursor": str(uuid.UUID(int=(1 << 128) - 1))},
        ):
            assert not job_ids(**query) & their_ids, (caller.name, query)
        assert mine.canceled_job in job_ids(status="canceled")
        assert mine.done_job in job_ids(status="succeeded")

        batches = _json(client.get("/v1/batches", params={"limit": 100}, headers=caller.headers))
        listed = {batch["id"] for batch in batches["data"]}
        assert {mine.batch, mine.canceled_batch, mine.openai_batch} <= listed
        assert not listed & their_batches

        for status in (None, "queued", "canceled"):
            query = {"status": status} if status else {}
            jobs = _json(
                client.get(f"/v1/batches/{mine.batch}/jobs", params=query, headers=caller.headers)
            )
            assert all(job["batch_id"] == mine.batch for job in jobs["data"])


def test_an_admin_lists_every_teams_rows(
    client: TestClient, alpha: Rows, bravo: Rows, admin: TeamKey
) -> None:
    jobs = _json(client.get("/v1/jobs", params={"limit": 100}, headers=admin.headers))
    listed = {job["id"] for job in jobs["data"]}
    assert {alpha.job, alpha.done_job, bravo.job, bravo.done_job} <= listed
    batches = _json(client.get("/v1/batches", params={"limit": 100}, headers=admin.headers))
    listed = {batch["id"] for batch in batches["data"]}
    assert {alpha.batch, alpha.openai_batch, bravo.batch, bravo.openai_batch} <= listed


def test_another_teams_file_is_no_batch_input(
    client: TestClient, alpha: Rows, other_team: TeamKey, db_engine: sa.Engine
) -> None:
    before = _snapshot(db_engine)
    response = _openai_batch(client, other_team, alpha.file)
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["type"] == "not_found"
    assert [e["field"] for e in error["errors"]] == ["input_file_id"]
    # Exactly what a file that does not exist gets.
    missing = _openai_batch(client, other_team, f"file-{uuid.uuid4().hex}").json()["error"]
    assert (missing["type"], missing["errors"][0]["field"]) == (error["type"], "input_file_id")
    assert _snapshot(db_engine) == before


def test_openai_result_files_belong_to_the_batchs_team(
    client: TestClient,
    alpha: Rows,
    team: TeamKey,
    other_team: TeamKey,
    admin: TeamKey,
    db_engine: sa.Engine,
) -> None:
    _json(client.post(f"/v1/batches/{alpha.openai_batch}/cancel", headers=team.headers))
    # An admin asks first, so the admin's request writes the files: they are still alpha's.
    finished = _json(client.get(f"/v1/batches/{alpha.openai_batch}", headers=admin.headers))
    assert finished["status"] == "cancelled" and finished["error_file_id"]
    with db_engine.connect() as conn:
        owners = dict(
            conn.execute(
                sa.text("SELECT id, team_id FROM files WHERE id IN (:out, :err)"),
                {"out": finished["output_file_id"], "err": finished["error_file_id"]},
            ).all()
        )
    assert set(owners.values()) == {team.team_id}
    for file_id in owners:
        assert client.get(f"/v1/files/{file_id}/content", headers=team.headers).status_code == 200
        theirs = client.get(f"/v1/files/{file_id}/content", headers=other_team.headers)
        assert theirs.status_code == 404


def test_idempotency_keys_are_per_team(
    client: TestClient, team: TeamKey, other_team: TeamKey, db_engine: sa.Engine
) -> None:
    key = {"Idempotency-Key": "shared-key"}
    ids = {}
    for caller in (team, other_team):
        headers = {**caller.headers, **key}
        first = _json(client.post("/v1/jobs", json=ECHO, headers=headers), 202)
        again = _json(client.post("/v1/jobs", json=ECHO, headers=headers), 202)
        assert again["id"] == first["id"]
        ids[caller.name] = first["id"]
    assert ids[team.name] != ids[other_team.name]
    # The same for batches: one batch per team.
    body = {"jobs": [ECHO]}
    batches = {
        caller.name: _json(
            client.post("/v1/batches", json=body, headers={**caller.headers, **key}), 202
        )["id"]
        for caller in (team, other_team)
    }
    assert batches[team.name] != batches[other_team.name]
    with db_engine.connect() as conn:
        owners = dict(
            conn.execute(sa.text("SELECT id::text, team_id FROM jobs WHERE batch_id IS NULL")).all()
        )
    assert owners == {ids[team.name]: team.team_id, ids[other_team.name]: other_team.team_id}


def test_rows_record_the_team_and_key_that_made_them(
    client: TestClient, alpha: Rows, team: TeamKey, db_engine: sa.Engine
) -> None:
    with db_engine.connect() as conn:
        jobs = conn.execute(sa.text("SELECT DISTINCT team_id, key_prefix FROM jobs")).all()
        batches = conn.execute(sa.text("SELECT DISTINCT team_id FROM batches")).all()
        files = conn.execute(sa.text("SELECT DISTINCT team_id FROM files")).all()
        artifacts = conn.execute(
            sa.text("SELECT DISTINCT team_id, key_prefix FROM artifacts")
        ).all()
    # Single jobs and batch jobs (written with COPY) alike.
    assert [tuple(row) for row in jobs] == [(team.team_id, team.prefix)]
    assert [tuple(row) for row in batches] == [(team.team_id,)]
    assert [tuple(row) for row in files] == [(team.team_id,)]
    assert [tuple(row) for row in artifacts] == [(team.team_id, team.prefix)]


@pytest.fixture
def with_worker(settings: Settings, tiny_models: Path, team: TeamKey) -> Iterator[TestClient]:
    with (
        isolated_broker(settings) as isolated,
        started_worker(isolated, tiny_models, kinds="text"),
        TestClient(create_app(isolated), headers=team.headers) as live,
    ):
        yield live


def test_a_workers_artifacts_are_the_jobs_team_and_reach_no_other(
    with_worker: TestClient, team: TeamKey, other_team: TeamKey, db_engine: sa.Engine
) -> None:
    job_id = _submit(with_worker, team, **ECHO)
    done = wait_for_job(with_worker, job_id)
    assert done["status"] == "succeeded"
    [artifact] = done["artifacts"]
    with db_engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT team_id, key_prefix FROM artifacts WHERE id = :id"),
            {"id": artifact["id"]},
        ).one()
    assert tuple(row) == (team.team_id, team.prefix)
    path = f"/v1/artifacts/{artifact['id']}/content"
    assert with_worker.get(path).content == b"mine"
    assert with_worker.get(path, headers=other_team.headers).status_code == 404
