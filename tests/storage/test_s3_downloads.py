"""Downloads with the S3 store, through the API in-process: a job's artifact URL is a
presigned URL of the bucket, and every download route of the API answers 307 to one, so
no bytes pass through the API."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from aigc.settings import Settings
from aigc.signing import UrlSigner
from aigc.storage import ArtifactStore, open_store
from api.main import create_app
from tests.conftest import TeamKey
from tests.storage.conftest import record_artifact


@pytest.fixture
def s3_api(s3_settings: Settings, team: TeamKey, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(s3_settings.model_copy(update={"var_dir": tmp_path}))
    with TestClient(app, headers=team.headers) as client:
        yield client


def _store(client: TestClient) -> ArtifactStore:
    return client.app.state.store  # type: ignore[attr-defined,no-any-return]


def _redirected(client: TestClient, path: str) -> httpx.Response:
    """The 307 the API answers and what its Location then serves (fetched with no key)."""
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 307, response.text
    assert response.headers["cache-control"] == "no-store"
    return httpx.get(response.headers["location"])


def test_job_artifact_url_is_presigned(
    s3_api: TestClient, s3_settings: Settings, db_engine: sa.Engine, team: TeamKey
) -> None:
    recorded = record_artifact(db_engine, _store(s3_api), team, b"bytes straight from S3")
    [artifact] = s3_api.get(f"/v1/jobs/{recorded.job_id}").json()["artifacts"]
    assert artifact["url"].startswith(f"{s3_settings.s3_endpoint_url}/")
    assert "X-Amz-Signature=" in artifact["url"]
    assert artifact["expires_at"] is None  # no retention configured: kept forever
    body = httpx.get(artifact["url"])  # no API key, no API
    assert body.status_code == 200
    assert body.content == recorded.data
    assert hashlib.sha256(body.content).hexdigest() == artifact["sha256"]
    assert body.headers["content-type"] == "text/plain; charset=utf-8"


def test_download_routes_redirect_to_the_bucket(
    s3_api: TestClient, db_engine: sa.Engine, team: TeamKey
) -> None:
    recorded = record_artifact(db_engine, _store(s3_api), team, b"redirected")
    path = f"/v1/artifacts/{recorded.artifact_id}/content"
    assert _redirected(s3_api, path).content == b"redirected"
    # The API's own signed URL (no key) redirects too.
    signer: UrlSigner = s3_api.app.state.url_signer  # type: ignore[attr-defined]
    signed = f"{path}?{signer.query(recorded.artifact_id)}"
    anonymous = TestClient(s3_api.app)
    assert _redirected(anonymous, signed).content == b"redirected"
    # A wrong signature is still refused before any redirect.
    altered = signed[:-1] + ("1" if signed.endswith("0") else "0")
    assert anonymous.get(altered, follow_redirects=False).status_code == 403


def test_etag_still_answers_304(s3_api: TestClient, db_engine: sa.Engine, team: TeamKey) -> None:
    recorded = record_artifact(db_engine, _store(s3_api), team, b"cached")
    etag = f'"{hashlib.sha256(b"cached").hexdigest()}"'
    response = s3_api.get(
        f"/v1/artifacts/{recorded.artifact_id}/content",
        headers={"If-None-Match": etag},
        follow_redirects=False,
    )
    assert response.status_code == 304


def test_bytes_missing_from_the_bucket_are_410(
    s3_api: TestClient, db_engine: sa.Engine, team: TeamKey
) -> None:
    recorded = record_artifact(db_engine, _store(s3_api), team)
    _store(s3_api).delete(recorded.storage_key)
    response = s3_api.get(f"/v1/artifacts/{recorded.artifact_id}/content")
    assert response.status_code == 410
    assert "no longer stored" in response.json()["error"]["message"]


def test_another_teams_artifact_is_404_not_a_redirect(
    s3_api: TestClient, db_engine: sa.Engine, team: TeamKey, other_team: TeamKey
) -> None:
    recorded = record_artifact(db_engine, _store(s3_api), other_team)
    response = s3_api.get(f"/v1/artifacts/{recorded.artifact_id}/content", follow_redirects=False)
    assert response.status_code == 404


def test_uploaded_file_goes_to_the_bucket_and_back(s3_api: TestClient) -> None:
    data = b'{"custom_id": "a"}\n' * 100
    uploaded = s3_api.post(
        "/v1/files", files={"file": ("input.jsonl", data)}, data={"purpose": "batch"}
    ).json()
    store = _store(s3_api)
    key = f"files/{uploaded['id']}"
    assert store.exists(key)
    downloaded = _redirected(s3_api, f"/v1/files/{uploaded['id']}/content")
    assert downloaded.content == data
    assert downloaded.headers["content-disposition"] == 'attachment; filename="input.jsonl"'
    assert s3_api.delete(f"/v1/files/{uploaded['id']}").status_code == 200
    assert not store.exists(key)


def test_an_unreachable_bucket_is_503_not_500(
    s3_settings: Settings,
    db_engine: sa.Engine,
    team: TeamKey,
    tmp_path: Path,
    free_port: Callable[[], int],
) -> None:
    recorded = record_artifact(db_engine, open_store(s3_settings), team)
    stopped = s3_settings.model_copy(
        update={
            "s3_endpoint_url": f"http://127.0.0.1:{free_port()}",
            "s3_connect_timeout_s": 0.5,
            "var_dir": tmp_path,
        }
    )
    with TestClient(create_app(stopped), headers=team.headers) as client:
        for response in (
            client.get(f"/v1/artifacts/{recorded.artifact_id}/content"),
            client.post(
                "/v1/files", files={"file": ("a.jsonl", b"{}\n")}, data={"purpose": "batch"}
            ),
        ):
            assert response.status_code == 503, response.text
            assert response.json()["error"]["type"] == "store_unavailable"
            assert response.headers["retry-after"] == "5"
