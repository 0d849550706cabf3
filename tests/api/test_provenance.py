"""GET /v1/artifacts/{id}/provenance on jobs recorded the way a worker records them
(tests/e2e/test_provenance_e2e.py runs the real worker): who may read it, an expired
artifact, and a job from before workers recorded a weights hash."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app
from tests.api.test_signed_urls import store_finished_job
from tests.conftest import TeamKey


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _path(artifact_id: object) -> str:
    return f"/v1/artifacts/{artifact_id}/provenance"


def test_who_may_read_it(
    api: TestClient,
    db_engine: sa.Engine,
    settings: Settings,
    team: TeamKey,
    other_team: TeamKey,
    admin: TeamKey,
) -> None:
    stored = store_finished_job(db_engine, settings, team)
    mine = api.get(_path(stored.artifact_id), headers=team.headers)
    assert mine.status_code == 200, mine.text
    assert (mine.json()["team"], mine.json()["key_prefix"]) == (team.name, team.prefix)
    # An admin key sees every team's, named by the team that owns it.
    assert api.get(_path(stored.artifact_id), headers=admin.headers).json()["team"] == team.name
    assert api.get(_path(stored.artifact_id), headers=other_team.headers).status_code == 404
    assert api.get(_path(stored.artifact_id)).status_code == 401


def test_a_job_from_before_weights_hashes_shows_what_its_label_carried(
    api: TestClient, db_engine: sa.Engine, settings: Settings, team: TeamKey
) -> None:
    stored = store_finished_job(db_engine, settings, team)  # no model_revision recorded
    provenance = api.get(_path(stored.artifact_id), headers=team.headers).json()
    job = api.get(f"/v1/jobs/{stored.job_id}", headers=team.headers).json()
    # The tiny model's catalog source: empty, as labels carried then.
    assert provenance["model"]["revision"] == provenance["label"]["model_revision"] == ""
    assert provenance["label"] == job["artifacts"][0]["label"]
    assert provenance["seed"] is None and provenance["line"] is None


def test_an_expired_artifact_is_gone(
    api: TestClient, db_engine: sa.Engine, settings: Settings, team: TeamKey
) -> None:
    stored = store_finished_job(db_engine, settings, team)
    with db_engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE artifacts SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": stored.artifact_id},
        )
    gone = api.get(_path(stored.artifact_id), headers=team.headers)
    assert gone.status_code == 410, gone.text
