"""Signed, expiring artifact URLs: job responses carry them, anyone holding one gets the
bytes without a key until it expires, and a changed, expired or malformed one is a 403.
Without a signature the route needs the key of the artifact's team.

One test runs echo jobs on a real worker process end to end; the others record a finished
job the way a worker does (claim, bytes into the store, succeed with artifact rows), which
keeps each of them to milliseconds."""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session

from aigc.settings import Settings
from aigc.signing import UrlSigner
from aigc.storage import LocalStore
from api.main import create_app
from db import jobs as job_queries
from tests.conftest import TeamKey, auth_headers
from tests.live import isolated_broker, started_worker, wait_for_batch, wait_for_job

WORKER = "test-signed-urls"


@dataclass(frozen=True)
class Stored:
    """A finished job's artifact, as a worker records it."""

    job_id: str
    artifact_id: uuid.UUID
    data: bytes
    mime_type: str


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def store_finished_job(engine: sa.Engine, settings: Settings, team: TeamKey) -> Stored:
    """A succeeded image job of `team` with one PNG artifact: queued, claimed, its bytes in
    the store and its artifact row recorded with the status, by the db functions a worker
    uses."""
    data = _png()
    with Session(engine) as session, session.begin():
        job = job_queries.create_job(
            session, kind="image", model="tiny-image", prompt="a red square", params={},
            metadata={}, team_id=team.team_id, key_prefix=team.prefix,
        )  # fmt: skip
        [claimed] = job_queries.claim_jobs(session, [job.id], worker=WORKER, lease_s=60)
        key = f"jobs/{job.id.hex[:8]}/{job.id}-{claimed.attempts}-0.png"
        LocalStore(settings.artifact_dir).put(key, data)
        artifact = job_queries.NewArtifact(
            index=0, mime_type="image/png", size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(), storage_key=key,
            facts={"width": 4, "height": 4},
        )  # fmt: skip
        job_queries.succeed_jobs(
            session, worker=WORKER, runs={job.id: claimed.attempts}, artifacts={job.id: [artifact]}
        )
        job_id = str(job.id)
    with engine.connect() as conn:
        artifact_id = conn.execute(
            sa.text("SELECT id FROM artifacts WHERE job_id = :id"), {"id": job_id}
        ).scalar_one()
    return Stored(job_id, artifact_id, data, "image/png")


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    """The API in-process with no default key: each request says whose key it sends, if
    any. Its signing key is made in a var dir of its own."""
    with TestClient(create_app(settings.model_copy(update={"var_dir": tmp_path}))) as client:
        yield client


def signer(client: TestClient) -> UrlSigner:
    return client.app.state.url_signer  # type: ignore[attr-defined,no-any-return]


def signed_url(client: TestClient, team: TeamKey, job_id: str) -> str:
    """The artifact URL of the job, as its team reads it."""
    job = client.get(f"/v1/jobs/{job_id}", headers=team.headers).raise_for_status().json()
    [artifact] = job["artifacts"]
    return str(artifact["url"])


def content_path(artifact_id: uuid.UUID, query: str = "") -> str:
    return f"/v1/artifacts/{artifact_id}/content" + (f"?{query}" if query else "")


def assert_forbidden(response: object, *words: str) -> None:
    assert response.status_code == 403, response.text  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert error["type"] == "forbidden"
    for word in words:
        assert word in error["message"]


def test_a_real_jobs_signed_url_serves_its_bytes_without_a_key(
    settings: Settings, model_dir: Path, team: TeamKey, tmp_path: Path
) -> None:
    with (
        isolated_broker(settings.model_copy(update={"var_dir": tmp_path})) as isolated,
        TestClient(create_app(isolated), headers=team.headers) as client,
    ):
        jsonl = "".join(
            json.dumps({"custom_id": f"c{n}", "kind": "text", "model": "echo", "prompt": f"hi {n}"})
            + "\n"
            for n in range(2)
        )
        created = client.post(
            "/v1/batches", content=jsonl, headers={"content-type": "application/x-ndjson"}
        )
        assert created.status_code == 202, created.text
        batch_id = created.json()["id"]
        with started_worker(isolated, model_dir, kinds="text"):
            assert wait_for_batch(client, batch_id)["status"] == "completed"
        jobs = client.get(f"/v1/batches/{batch_id}/jobs").json()["data"]
        job = wait_for_job(client, jobs[0]["id"])
        [artifact] = job["artifacts"]

        # Signed, expiring in AIGC_URL_TTL_S, in the job, the job list and the batch's jobs.
        url = urlsplit(artifact["url"])
        query = parse_qs(url.query)
        assert url.path == f"/v1/artifacts/{artifact['id']}/content"
        assert set(query) == {"expires", "signature"}
        expires = int(query["expires"][0])
        assert 0 < expires - time.time() <= isolated.url_ttl_s
        listed = client.get("/v1/jobs").json()["data"]
        assert all("signature=" in a["url"] for j in listed for a in j["artifacts"])
        assert all("signature=" in a["url"] for j in jobs for a in j["artifacts"])

        # Fetched with no key at all, as a browser would.
        del client.headers["Authorization"]
        anonymous = client.get(artifact["url"])
        assert anonymous.status_code == 200, anonymous.text
        assert anonymous.content == b"hi 0"
        assert anonymous.headers["content-type"].startswith(artifact["mime_type"])
        assert anonymous.headers["etag"] == f'"{artifact["sha256"]}"'
        assert anonymous.headers["x-content-type-options"] == "nosniff"
        ranged = client.get(artifact["url"], headers={"Range": "bytes=0-1"})
        assert (ranged.status_code, ranged.content) == (206, b"hi")

        # Stored results keep the stable URL, which needs the key.
        results = client.get(f"/v1/batches/{batch_id}/results", headers=team.headers)
        lines = [json.loads(line) for line in results.text.splitlines()]
        stable = lines[0]["artifacts"][0]["url"]
        assert urlsplit(stable).path == url.path and not urlsplit(stable).query
        assert client.get(stable, headers=team.headers).content == b"hi 0"
        assert client.get(stable).status_code == 401


def test_signed_url_serves_the_bytes_with_their_type(
    api: TestClient, settings: Settings, db_engine: sa.Engine, team: TeamKey, other_team: TeamKey
) -> None:
    stored = store_finished_job(db_engine, settings, team)
    url = signed_url(api, team, stored.job_id)
    response = api.get(url)
    assert response.status_code == 200, response.text
    assert response.content == stored.data
    assert response.headers["content-type"] == stored.mime_type
    assert response.headers["x-content-type-options"] == "nosniff"
    # The signature decides alone: another team's key sent along changes nothing.
    assert api.get(url, headers=other_team.headers).content == stored.data
    # And the team's own key still works on the plain route.
    assert api.get(content_path(stored.artifact_id), headers=team.headers).content == stored.data


def test_expired_signed_url_is_forbidden(
    api: TestClient, settings: Settings, db_engine: sa.Engine, team: TeamKey
) -> None:
    stored = store_finished_job(db_engine, settings, team)
    issued_long_ago = time.time() - signer(api).ttl_s - 5
    query = signer(api).query(stored.artifact_id, now=issued_long_ago)
    assert_forbidden(api.get(content_path(stored.artifact_id, query)), "expired")
    # Expired for a key holder too: the signature decides, the key is not consulted.
    assert_forbidden(api.get(content_path(stored.artifact_id, query), headers=team.headers))


def test_altered_signed_urls_are_forbidden(
    api: TestClient, settings: Settings, db_engine: sa.Engine, team: TeamKey
) -> None:
    stored = store_finished_job(db_engine, settings, team)
    another = store_finished_job(db_engine, settings, team)
    query = parse_qs(urlsplit(signed_url(api, team, stored.job_id)).query)
    expires, signature = query["expires"][0], query["signature"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    altered = {
        "another artifact's id": (another.artifact_id, expires, signature),
        "a later expiry": (stored.artifact_id, str(int(expires) + 3600), signature),
        "an earlier expiry": (stored.artifact_id, str(int(expires) - 1), signature),
        "a changed signature": (stored.artifact_id, expires, flipped),
        "another artifact's signature": (
            stored.artifact_id,
            expires,
            signer(api).signature(another.artifact_id, int(expires)),
        ),
    }
    for what, (artifact_id, new_expires, new_signature) in altered.items():
        response = api.get(
            content_path(artifact_id, f"expires={new_expires}&signature={new_signature}")
        )
        assert response.status_code == 403, what
        assert_forbidden(response, "not valid")
    # A correct signature for an artifact that does not exist finds nothing.
    missing = uuid.uuid4()
    assert api.get(content_path(missing, signer(api).query(missing))).status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "expires=abc&signature={sig}",
        "expires=-5&signature={sig}",
        "expires=1e12&signature={sig}",
        "expires=&signature={sig}",
        "expires=" + "9" * 40 + "&signature={sig}",
        "expires={exp}&signature=XYZ",
        "expires={exp}&signature=",
        "expires={exp}&signature={sig}00",
        "expires={exp}&signature={upper}",
        "expires={exp}",
        "signature={sig}",
        "expires={exp}&signature=%00",
    ],
)
def test_malformed_signed_urls_are_forbidden(
    api: TestClient, settings: Settings, db_engine: sa.Engine, team: TeamKey, query: str
) -> None:
    stored = store_finished_job(db_engine, settings, team)
    valid = parse_qs(urlsplit(signed_url(api, team, stored.job_id)).query)
    exp, sig = valid["expires"][0], valid["signature"][0]
    response = api.get(
        content_path(stored.artifact_id, query.format(exp=exp, sig=sig, upper=sig.upper()))
    )
    assert_forbidden(response)


def test_unsigned_download_needs_the_key_of_the_artifacts_team(
    api: TestClient, settings: Settings, db_engine: sa.Engine, team: TeamKey, other_team: TeamKey
) -> None:
    stored = store_finished_job(db_engine, settings, team)
    path = content_path(stored.artifact_id)
    for headers in ({}, auth_headers("not-a-key"), auth_headers("aigc_00000000_" + "A" * 43)):
        response = api.get(path, headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["type"] == "unauthorized"
    # Another team's key: the artifact is not there for it.
    response = api.get(path, headers=other_team.headers)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert api.get(path, headers=team.headers).content == stored.data


def test_signed_urls_last_the_configured_ttl(settings: Settings, tmp_path: Path) -> None:
    configured = settings.model_copy(update={"var_dir": tmp_path, "url_ttl_s": 90})
    with TestClient(create_app(configured)) as client:
        before = time.time()
        query = parse_qs(signer(client).query(uuid.uuid4()))
        assert 89 <= int(query["expires"][0]) - before <= 91
