"""What a worker asks of the jobs table, as one interface: `SqlJobStore` runs each call as
one transaction of the db.jobs queries; the unit tests drive workers/execution with a fake
that keeps jobs in memory. Every state change underneath is a conditional UPDATE on the
run (job id, attempt, worker), so a late or duplicate call changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from aigc.moderation import Match, Rule, Stage
from db import audit
from db import jobs as job_queries
from db import moderation as moderation_queries
from db.dispatch_queue import notify_dispatcher
from db.jobs import ClaimedJob, NewArtifact


class JobStore(Protocol):
    def claim(
        self, job_ids: Sequence[uuid.UUID], *, worker: str, lease_s: float
    ) -> list[ClaimedJob]:
        """queued → running for this worker; the jobs claimed, in id order."""
        ...

    def renew_leases(self, runs: Mapping[uuid.UUID, int], *, worker: str, lease_s: float) -> int:
        """Extend the lease of these runs (job id → attempt) that are still running."""
        ...

    def still_running(self, runs: Mapping[uuid.UUID, int], *, worker: str) -> bool:
        """Whether any of these runs is still running as this worker's."""
        ...

    def store_progress(
        self,
        runs: Mapping[uuid.UUID, int],
        *,
        worker: str,
        done: int,
        total: int,
        final: bool = False,
    ) -> int:
        """Record steps done of total on these runs' jobs (see db.jobs.store_progress)."""
        ...

    def succeed(
        self,
        runs: Mapping[uuid.UUID, int],
        *,
        worker: str,
        artifacts: Mapping[uuid.UUID, Sequence[NewArtifact]],
        progress: tuple[int, int] | None = None,
        model_revision: str | None = None,
    ) -> set[uuid.UUID]:
        """running → succeeded with the artifacts (and the last progress, and the revision
        of the model that made them); the ids recorded."""
        ...

    def fail(
        self, job_id: uuid.UUID, *, worker: str, attempt: int, error_code: str, error_message: str
    ) -> bool:
        """running → failed; False when the job is no longer this run."""
        ...

    def release(
        self,
        job_id: uuid.UUID,
        *,
        worker: str,
        attempt: int,
        max_attempts: int,
        error_code: str,
        error_message: str,
    ) -> str | None:
        """Back to queued (or failed after max_attempts); the new status, None if not ours."""
        ...

    def block(self, job_id: uuid.UUID, *, worker: str, attempt: int, match: Match) -> str | None:
        """running → blocked (its output refused), audited; the team's name, None if the
        job is no longer this run."""
        ...

    def moderation_rules(
        self, known_version: int | None
    ) -> tuple[int, dict[uuid.UUID | None, list[Rule]]] | None:
        """Every enabled rule by team, with their version; None while still at `known_version`."""
        ...


class SqlJobStore:
    """The jobs table in PostgreSQL: one transaction per call. Callers retry transient
    errors (workers.retry), which is safe because every change is conditional.

    A claim takes a message off the broker's window and an outcome frees a place under the
    team's max_running (or puts a job back to wait): each wakes the dispatcher."""

    def __init__(
        self, session_factory: sessionmaker[Session], *, artifact_retention_s: int | None = None
    ) -> None:
        self.session_factory = session_factory
        # The deployment's default, for teams without an artifact retention of their own.
        self.artifact_retention_s = artifact_retention_s

    def claim(
        self, job_ids: Sequence[uuid.UUID], *, worker: str, lease_s: float
    ) -> list[ClaimedJob]:
        with self.session_factory.begin() as session:
            claimed = job_queries.claim_jobs(session, job_ids, worker=worker, lease_s=lease_s)
            notify_dispatcher(session)
            return claimed

    def renew_leases(self, runs: Mapping[uuid.UUID, int], *, worker: str, lease_s: float) -> int:
        with self.session_factory.begin() as session:
            return job_queries.renew_leases(session, runs, worker=worker, lease_s=lease_s)

    def still_running(self, runs: Mapping[uuid.UUID, int], *, worker: str) -> bool:
        with self.session_factory() as session:
            return job_queries.still_running(session, runs=runs, worker=worker)

    def store_progress(
        self,
        runs: Mapping[uuid.UUID, int],
        *,
        worker: str,
        done: int,
        total: int,
        final: bool = False,
    ) -> int:
        with self.session_factory.begin() as session:
            return job_queries.store_progress(
                session, runs=runs, worker=worker, done=done, total=total, final=final
            )

    def succeed(
        self,
        runs: Mapping[uuid.UUID, int],
        *,
        worker: str,
        artifacts: Mapping[uuid.UUID, Sequence[NewArtifact]],
        progress: tuple[int, int] | None = None,
        model_revision: str | None = None,
    ) -> set[uuid.UUID]:
        with self.session_factory.begin() as session:
            recorded = job_queries.succeed_jobs(
                session,
                worker=worker,
                runs=runs,
                artifacts=artifacts,
                progress=progress,
                model_revision=model_revision,
                retention_s=self.artifact_retention_s,
            )
            notify_dispatcher(session)
            return recorded

    def fail(
        self, job_id: uuid.UUID, *, worker: str, attempt: int, error_code: str, error_message: str
    ) -> bool:
        with self.session_factory.begin() as session:
            notify_dispatcher(session)
            return job_queries.fail_job(
                session,
                job_id,
                worker=worker,
                attempt=attempt,
                error_code=error_code,
                error_message=error_message,
            )

    def release(
        self,
        job_id: uuid.UUID,
        *,
        worker: str,
        attempt: int,
        max_attempts: int,
        error_code: str,
        error_message: str,
    ) -> str | None:
        with self.session_factory.begin() as session:
            notify_dispatcher(session)
            return job_queries.release_job(
                session,
                job_id,
                worker=worker,
                attempt=attempt,
                max_attempts=max_attempts,
                error_code=error_code,
                error_message=error_message,
            )

    def block(self, job_id: uuid.UUID, *, worker: str, attempt: int, match: Match) -> str | None:
        with self.session_factory.begin() as session:
            notify_dispatcher(session)
            team_id = moderation_queries.block_run(
                session, job_id, worker=worker, attempt=attempt, match=match
            )
            if team_id is None:
                return None
            audit.record_many(
                session, audit.blocked_rows([(team_id, job_id, match.details(Stage.OUTPUT))])
            )
            return moderation_queries.team_names(session, [team_id]).get(team_id, str(team_id))

    def moderation_rules(
        self, known_version: int | None
    ) -> tuple[int, dict[uuid.UUID | None, list[Rule]]] | None:
        with self.session_factory() as session:
            version = moderation_queries.rules_version(session)
            if version == known_version:
                return None
            return version, moderation_queries.enabled_rules(session)
