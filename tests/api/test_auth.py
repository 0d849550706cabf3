"""Every route but health and the documentation needs `Authorization: Bearer <key>`. A
missing, malformed, unknown or revoked key gets the same 401 JSON error, which never says
whether a key exists; a key is never logged, stored or returned after its creation."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from aigc.apikeys import new_key
from aigc.cli.stack import stop_process, wait_for_http
from aigc.settings import Settings
from api.main import create_app
from db import teams as team_queries
from tests.conftest import TeamKey, auth_headers, count_jobs, make_team_key

PUBLIC_PATHS = ("/healthz", "/readyz", "/docs", "/redoc", "/openapi.json")
JOB = {"kind": "text", "model": "echo", "prompt": "hello"}


def _revoked_key(db_engine: sa.Engine) -> str:
    """A key that worked until it was revoked."""
    revoked = make_team_key(db_engine, "revoked-keys")
    with Session(db_engine) as session, session.begin():
        assert team_queries.revoke_key(session, revoked.prefix)
    return revoked.key


def _bad_credentials(valid: str, revoked: str) -> dict[str, dict[str, str]]:
    """Each way a request can fail to present a usable key, as request headers."""
    altered = valid[:-1] + ("A" if valid[-1] != "A" else "B")
    return {
        "no header": {},
        "empty header": {"Authorization": ""},
        "no scheme": {"Authorization": valid},
        "another scheme": {"Authorization": f"Basic {valid}"},
        "empty bearer": {"Authorization": "Bearer "},
        "garbage": {"Authorization": "Bearer not-a-key"},
        "oversized": {"Authorization": "Bearer " + "x" * 8000},
        "key-shaped, unknown": auth_headers(new_key().key),
        "one character altered": auth_headers(altered),
        "revoked": auth_headers(revoked),
    }


@pytest.fixture
def anonymous(settings: Settings) -> Iterator[TestClient]:
    """A client with no key of its own."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _routes_needing_a_key(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path) of every operation in the OpenAPI document but the public ones, path
    parameters filled with ids of nothing."""
    fill = {"file_id": f"file-{uuid.uuid4().hex}"}
    return [
        (method.upper(), re.sub(r"\{(\w+)\}", lambda m: fill.get(m[1], str(uuid.uuid4())), path))
        for path, operations in document["paths"].items()
        if path not in PUBLIC_PATHS
        for method in operations
    ]


def test_every_route_refuses_a_bad_key_with_one_401(
    anonymous: TestClient, team: TeamKey, db_engine: sa.Engine
) -> None:
    routes = _routes_needing_a_key(anonymous.get("/openapi.json").json())
    assert len(routes) > 10
    assert ("POST", "/v1/jobs") in routes
    answers = set()
    for name, headers in _bad_credentials(team.key, _revoked_key(db_engine)).items():
        for method, path in routes:
            body = JOB if method in ("POST", "PUT", "PATCH") else None
            response = anonymous.request(method, path, headers=headers, json=body)
            assert response.status_code == 401, (name, method, path, response.text)
            assert response.headers["content-type"] == "application/json", (name, path)
            answers.add(response.content)
    # One body for all: nothing tells an unknown key from a revoked one or from none.
    [body] = answers
    assert json.loads(body)["error"]["type"] == "unauthorized"
    assert count_jobs(db_engine) == 0


def test_a_valid_key_gets_in(anonymous: TestClient, team: TeamKey, admin: TeamKey) -> None:
    for key in (team, admin):
        assert anonymous.get("/v1/jobs", headers=key.headers).status_code == 200
        assert anonymous.post("/v1/jobs", json=JOB, headers=key.headers).status_code == 202
    # The scheme's name is case-insensitive (RFC 9110), as clients may send it.
    lower = {"Authorization": f"bearer {team.key}"}
    assert anonymous.get("/v1/jobs", headers=lower).status_code == 200


def test_health_and_documentation_need_no_key(anonymous: TestClient) -> None:
    for path in PUBLIC_PATHS:
        response = anonymous.get(path)
        assert response.status_code == 200, (path, response.text)
    assert "swagger" in anonymous.get("/docs").text.lower()
    assert anonymous.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    document = anonymous.get("/openapi.json").json()
    # The document says how to authenticate, and which routes need it.
    schemes = document["components"]["securitySchemes"]
    assert [scheme["scheme"].lower() for scheme in schemes.values()] == ["bearer"]
    assert document["paths"]["/v1/jobs"]["post"].get("security")
    assert not document["paths"]["/healthz"]["get"].get("security")


def test_keys_are_stored_only_as_hashes(team: TeamKey, db_engine: sa.Engine) -> None:
    secret = team.key.removeprefix(team.prefix)
    with db_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT row_to_json(api_keys)::text FROM api_keys")).scalars()
        dump = "\n".join(rows)
    assert team.prefix in dump
    assert secret not in dump and team.key not in dump


# ---- A real API process, logging everything -----------------------------------------------

DEBUG_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # Every logger of ours, uvicorn's (access log included), SQLAlchemy's and the drivers'.
    "root": {"level": "DEBUG", "handlers": ["out"]},
    "loggers": {
        "uvicorn": {"level": "DEBUG"},
        "uvicorn.access": {"level": "DEBUG"},
        "uvicorn.error": {"level": "DEBUG"},
        "sqlalchemy.engine": {"level": "DEBUG"},
    },
}


@pytest.fixture
def logging_api(
    settings: Settings, tmp_path: Path, free_port: Callable[[], int]
) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """`uvicorn api.main:create_app` at DEBUG for every logger, its output in a file."""
    config = tmp_path / "logging.json"
    config.write_text(json.dumps(DEBUG_LOGGING))
    log_file = tmp_path / "api.log"
    env = dict(
        os.environ,
        AIGC_DATABASE_URL=settings.database_url or "",
        AIGC_REDIS_URL=settings.redis_url or "",
        AIGC_ARTIFACT_DIR=str(settings.artifact_dir),
        AIGC_MODEL_DIR=str(settings.model_dir),
        AIGC_VAR_DIR=str(settings.var_dir),
        AIGC_PROFILE="offline",
    )
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "debug", "--log-config", str(config),
    ]  # fmt: skip
    with log_file.open("wb") as output:
        proc = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", 60, proc)
        yield url, log_file, proc
    finally:
        stop_process(proc)


def test_keys_are_never_logged_nor_returned(
    logging_api: tuple[str, Path, subprocess.Popen[bytes]],
    team: TeamKey,
    db_engine: sa.Engine,
) -> None:
    url, log_file, proc = logging_api
    revoked = _revoked_key(db_engine)
    unknown = new_key().key
    keys = [team.key, revoked, unknown]
    responses: list[httpx.Response] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for key in keys:
            headers = auth_headers(key)
            created = client.post("/v1/jobs", json=JOB, headers=headers)
            responses.append(created)
            if created.status_code == 202:
                job_id = created.json()["id"]
                responses.append(client.get(f"/v1/jobs/{job_id}", headers=headers))
                responses.append(client.post(f"/v1/jobs/{job_id}/cancel", headers=headers))
            responses += [
                client.get("/v1/jobs", params={"status": "queued"}, headers=headers),
                client.get(f"/v1/jobs/{uuid.uuid4()}", headers=headers),  # 404
                client.post("/v1/jobs", json={"kind": "nope"}, headers=headers),  # 422
                client.post("/v1/batches", content=b"{not json", headers=headers),  # 422
            ]
            # The key sent without its scheme.
            responses.append(client.get("/v1/jobs", headers={"Authorization": key}))
    assert {r.status_code for r in responses} >= {200, 202, 401, 404, 422}
    stop_process(proc)
    log = log_file.read_text(errors="replace")
    # Logging was on: requests, SQL and our own lines are there.
    assert "GET /v1/jobs" in log and "SELECT" in log, log[-2000:]
    for key in keys:
        secret = key.split("_", 2)[2]
        for response in responses:
            assert secret not in response.text
            assert all(secret not in value for value in response.headers.values())
        assert secret not in log, "a key's secret is in the API's log"
