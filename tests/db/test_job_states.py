"""Job state changes are conditional updates: a late, duplicate or stale run changes nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from aigc.settings import Settings
from db import jobs as q
from db.session import make_engine, make_session_factory
from db.tables import Job
from tests.conftest import TeamKey

ARTIFACT = q.NewArtifact(
    index=0, mime_type="text/plain", size_bytes=1, sha256="0" * 64, storage_key="k", facts={}
)


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url or "")
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def new_job(sessions: sessionmaker[Session], team: TeamKey) -> Callable[[], uuid.UUID]:
    """Makes a queued job of `team`, submitted with its key; returns its id."""

    def make() -> uuid.UUID:
        with sessions.begin() as session:
            job = q.create_job(
                session,
                kind="text",
                model="echo",
                prompt="p",
                params={},
                metadata={},
                team_id=team.team_id,
                key_prefix=team.prefix,
            )
            return job.id

    return make


def _status(sessions: sessionmaker[Session], job_id: uuid.UUID) -> tuple[str, int]:
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.status, job.attempts


def test_a_job_is_claimed_once(
    sessions: sessionmaker[Session], new_job: Callable[[], uuid.UUID]
) -> None:
    job_id = new_job()
    with sessions.begin() as session:
        assert len(q.claim_jobs(session, [job_id], worker="a", lease_s=30)) == 1
    with sessions.begin() as session:
        assert q.claim_jobs(session, [job_id], worker="b", lease_s=30) == []
    assert _status(sessions, job_id) == ("running", 1)


def test_a_stale_run_cannot_record_its_outcome(
    sessions: sessionmaker[Session], new_job: Callable[[], uuid.UUID]
) -> None:
    job_id = new_job()
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


def test_lost_worker_fails_the_job_after_max_attempts(
    sessions: sessionmaker[Session], new_job: Callable[[], uuid.UUID]
) -> None:
    job_id = new_job()
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


def test_transient_failure_requeues_until_max_attempts(
    sessions: sessionmaker[Session], new_job: Callable[[], uuid.UUID]
) -> None:
    job_id = new_job()
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


def test_canceled_job_is_never_claimed(
    sessions: sessionmaker[Session], new_job: Callable[[], uuid.UUID]
) -> None:
    job_id = new_job()
    with sessions.begin() as session:
        assert q.cancel_job(session, job_id)
    with sessions.begin() as session:
        assert q.claim_jobs(session, [job_id], worker="w", lease_s=30) == []
    assert _status(sessions, job_id) == ("canceled", 0)


def _progress(sessions: sessionmaker[Session], job_id: uuid.UUID) -> tuple[int | None, int | None]:
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.progress_done, job.progress_total


def test_still_running_until_canceled_or_taken_over(
    sessions: sessionmaker[Session], new_job: Callable[[], uuid.UUID]
) -> None:
    job_id = new_job()
    with sessions.begin() as session:
        q.claim_jobs(session, [job_id], worker="a", lease_s=30)
    with sessions() as session:
        assert q.still_running(session, runs={job_id: 1}, worker="a")
        assert not q.still_running(session, runs={job_id: 1}, worker="b")
        assert not q.still_running(session, runs={job_id: 2}, worker="a")
    with sessions.begin() as session:
        q.cancel_job(session, job_id)
    with sessions() as session:
        assert not q.still_running(session, runs={job_id: 1}, worker="a")


def test_progress_is_written_only_by_the_running_attempt(
    sessions: sessionmaker[Session], new_job: Callable[[], uuid.UUID]
) -> None:
    job_id = new_job()
    with sessions.begin() as session:
        q.claim_jobs(session, [job_id], worker="a", lease_s=30)
    with sessions.begin() as session:
        assert q.store_progress(session, runs={job_id: 1}, worker="a", done=3, total=10) == 1
        assert q.store_progress(session, runs={job_id: 1}, worker="b", done=9, total=10) == 0
    assert _progress(sessions, job_id) == (3, 10)
    with sessions.begin() as session:
        q.cancel_job(session, job_id)
    # Once canceled, only the run's final report lands: the step it really stopped at.
    with sessions.begin() as session:
        assert q.store_progress(session, runs={job_id: 1}, worker="a", done=4, total=10) == 0
        assert (
            q.store_progress(session, runs={job_id: 1}, worker="a", done=4, total=10, final=True)
            == 1
        )
    assert _progress(sessions, job_id) == (4, 10)
    # A retry starts from no progress, and the old run can no longer write any.
    with sessions.begin() as session:
        [requeued] = q.requeue_jobs(session, statuses=["canceled"], job_id=job_id)
        assert requeued.status == "queued" and requeued.worker is None
    assert _progress(sessions, job_id) == (None, None)
    with sessions.begin() as session:
        assert (
            q.store_progress(session, runs={job_id: 1}, worker="a", done=5, total=10, final=True)
            == 0
        )


def test_success_records_the_last_progress_with_it(
    sessions: sessionmaker[Session], new_job: Callable[[], uuid.UUID]
) -> None:
    job_id = new_job()
    with sessions.begin() as session:
        q.claim_jobs(session, [job_id], worker="a", lease_s=30)
    with sessions.begin() as session:
        q.succeed_jobs(
            session,
            worker="a",
            runs={job_id: 1},
            artifacts={job_id: [ARTIFACT]},
            progress=(8, 8),
        )
    assert _progress(sessions, job_id) == (8, 8)


def test_artifacts_record_the_jobs_team_and_key(
    sessions: sessionmaker[Session], new_job: Callable[[], uuid.UUID], team: TeamKey
) -> None:
    job_id = new_job()
    with sessions.begin() as session:
        q.claim_jobs(session, [job_id], worker="a", lease_s=30)
    with sessions.begin() as session:
        q.succeed_jobs(session, worker="a", runs={job_id: 1}, artifacts={job_id: [ARTIFACT]})
    with sessions() as session:
        job = q.get_job(session, job_id)
        assert job is not None
        assert (job.team_id, job.key_prefix) == (team.team_id, team.prefix)
        [artifact] = job.artifacts
        assert (artifact.team_id, artifact.key_prefix) == (team.team_id, team.prefix)


def test_every_way_back_to_the_queue_clears_the_run(
    sessions: sessionmaker[Session], new_job: Callable[[], uuid.UUID]
) -> None:
    released, expired = new_job(), new_job()
    with sessions.begin() as session:
        q.claim_jobs(session, [released], worker="a", lease_s=30)
        q.claim_jobs(session, [expired], worker="a", lease_s=0.05)
        q.store_progress(session, runs={released: 1, expired: 1}, worker="a", done=1, total=2)
    time.sleep(0.1)
    with sessions.begin() as session:
        q.release_job(
            session,
            released,
            worker="a",
            attempt=1,
            max_attempts=3,
            error_code="out_of_memory",
            error_message="CUDA out of memory",
        )
        assert [job.id for job in q.reap_expired_leases(session, max_attempts=3)] == [expired]
    with sessions() as session:
        for job_id in (released, expired):
            job = session.get(Job, job_id)
            assert job is not None
            assert (job.status, job.worker, job.started_at, job.lease_expires_at) == (
                "queued", None, None, None,
            )  # fmt: skip
            assert (job.progress_done, job.progress_total) == (None, None)
