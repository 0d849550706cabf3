"""Job state changes are conditional updates: a late, duplicate or stale run changes nothing."""

from __future__ import annotations

import time
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from aigc.settings import Settings
from db import jobs as q
from db.session import make_engine, make_session_factory
from db.tables import Job

ARTIFACT = q.NewArtifact(
    index=0, mime_type="text/plain", size_bytes=1, sha256="0" * 64, storage_key="k", facts={}
)


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    return make_session_factory(make_engine(settings.database_url or ""))


def _new_job(sessions: sessionmaker[Session]) -> uuid.UUID:
    with sessions.begin() as session:
        job = q.create_job(session, kind="text", model="echo", prompt="p", params={}, metadata={})
        return job.id


def _status(sessions: sessionmaker[Session], job_id: uuid.UUID) -> tuple[str, int]:
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.status, job.attempts


def test_a_job_is_claimed_once(sessions: sessionmaker[Session]) -> None:
    job_id = _new_job(sessions)
    with sessions.begin() as session:
        assert len(q.claim_jobs(session, [job_id], worker="a", lease_s=30)) == 1
    with sessions.begin() as session:
        assert q.claim_jobs(session, [job_id], worker="b", lease_s=30) == []
    assert _status(sessions, job_id) == ("running", 1)


def test_a_stale_run_cannot_record_its_outcome(sessions: sessionmaker[Session]) -> None:
    job_id = _new_job(sessions)
    with sessions.begin() as session:
        q.claim_jobs(session, [job_id], worker="a", lease_s=0.1)
    time.sleep(0.2)
    with sessions.begin() as session:
        assert [j.id for j in q.reap_expired_leases(session, max_attempts=3)] == [job_id]
    with sessions.begin() as session:
        [claimed] = q.claim_jobs(session, [job_id], worker="b", lease_s=30)
        assert claimed.attempts == 2
    # Worker a comes back from the dead: neither its success nor its failure counts.
    with sessions.begin() as session:
        assert (
            q.succeed_jobs(session, worker="a", runs={job_id: 1}, artifacts={job_id: [ARTIFACT]})
            == set()
        )
        assert not q.fail_job(
            session, job_id, worker="a", attempt=1, error_code="X", error_message="x"
        )
    with sessions.begin() as session:
        recorded = q.succeed_jobs(
            session, worker="b", runs={job_id: 2}, artifacts={job_id: [ARTIFACT]}
        )
        assert recorded == {job_id}
    assert _status(sessions, job_id) == ("succeeded", 2)
    with sessions() as session:
        assert session.scalar(sa.text("SELECT count(*) FROM artifacts")) == 1


def test_lost_worker_fails_the_job_after_max_attempts(sessions: sessionmaker[Session]) -> None:
    job_id = _new_job(sessions)
    for _ in range(2):
        with sessions.begin() as session:
            q.claim_jobs(session, [job_id], worker="w", lease_s=0.05)
        time.sleep(0.1)
        with sessions.begin() as session:
            q.reap_expired_leases(session, max_attempts=2)
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.attempts, job.error_code) == ("failed", 2, "worker_lost")


def test_transient_failure_requeues_until_max_attempts(sessions: sessionmaker[Session]) -> None:
    job_id = _new_job(sessions)
    outcomes = []
    for attempt in (1, 2):
        with sessions.begin() as session:
            q.claim_jobs(session, [job_id], worker="w", lease_s=30)
        with sessions.begin() as session:
            outcomes.append(
                q.release_job(
                    session,
                    job_id,
                    worker="w",
                    attempt=attempt,
                    max_attempts=2,
                    error_code="out_of_memory",
                    error_message="CUDA out of memory",
                )  # fmt: skip
            )
    assert outcomes == ["queued", "failed"]
    assert _status(sessions, job_id) == ("failed", 2)


def test_canceled_job_is_never_claimed(sessions: sessionmaker[Session]) -> None:
    job_id = _new_job(sessions)
    with sessions.begin() as session:
        assert q.cancel_job(session, job_id)
    with sessions.begin() as session:
        assert q.claim_jobs(session, [job_id], worker="w", lease_s=30) == []
    assert _status(sessions, job_id) == ("canceled", 0)
