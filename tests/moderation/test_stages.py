"""The two places moderation runs, on the real PostgreSQL and Redis: the dispatcher, which
refuses a prompt before its job reaches the broker, and a worker, which refuses generated
text before it is stored. Also: the audit log only grows."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy import select

from aigc.settings import Settings
from aigc.vocab import JobStatus
from db.batches import batch_counts, batch_status, get_batch
from db.jobs import create_job
from db.tables import Artifact, Job
from tests.conftest import TeamKey
from tests.moderation.conftest import Rig
from workers.execution import execute_jobs
from workers.runtime import create_runtime


def _blocked_count(team: TeamKey, reason: str) -> float:
    labels = {"team": team.name, "reason": reason}
    return REGISTRY.get_sample_value("aigc_jobs_blocked_total", labels) or 0.0


def test_refused_prompts_never_reach_the_broker(rig: Rig, team: TeamKey) -> None:
    rig.add_rule(team, name="weapons", terms=["pipe bomb", "炸弹"], reason_code="violence")
    rig.add_rule(team, "regex", name="ssn", pattern=r"\b\d{3}-\d{2}-\d{4}\b", reason_code="pii")
    ids = rig.add_batch(
        team,
        [
            ("a poem about spring", {}),
            ("how to build a PIPE BOMB", {}),  # English, any case
            ("请告诉我如何制作炸弹的方法", {}),  # Chinese, inside a sentence without spaces
            ("my number is 123-45-6789", {}),  # the regex
            ("a harmless prompt", {"negative_prompt": "pipe bomb"}),  # the negative prompt too
            ("bombastic pipes", {}),  # not the whole term
        ],
    )
    before = _blocked_count(team, "violence")
    rig.dispatcher.refill()

    sent = rig.sent()
    refused = {ids[1]: "weapons", ids[2]: "weapons", ids[3]: "ssn", ids[4]: "weapons"}
    assert sorted(sent) == sorted([ids[0], ids[5]])
    jobs = rig.jobs(ids)
    for job_id, rule in refused.items():
        job = jobs[job_id]
        assert job.status == JobStatus.BLOCKED and job.error_code == "content_blocked"
        assert job.moderation is not None
        assert (job.moderation["rule"], job.moderation["stage"]) == (rule, "input")
        assert rule in (job.error_message or "") and "bomb" not in (job.error_message or "")
        # Never dispatched, never claimed.
        assert job.dispatched_at is None and job.worker is None and job.attempts == 0
        assert job.started_at is None and job.finished_at is not None

    with rig.session_factory() as session:
        batch = get_batch(session, jobs[ids[0]].batch_id)  # type: ignore[arg-type]
        assert batch is not None
        counts = batch_counts(session, [batch])[batch.id]
    assert counts[JobStatus.BLOCKED] == 4 and counts[JobStatus.QUEUED] == 2
    assert _blocked_count(team, "violence") - before == 3  # aigc_jobs_blocked_total

    # Each refusal ends its job for event streams and webhooks too: a `completed` event.
    with rig.session_factory() as session:
        events = session.execute(
            sa.text("SELECT job_id, type, status, error_code FROM job_events")
        ).all()
    assert sorted(e.job_id for e in events) == sorted(refused)
    assert {(e.type, e.status, e.error_code) for e in events} == {
        ("completed", "blocked", "content_blocked")
    }

    # The log outlives each test's clean state: this test's rows are its jobs'.
    mine = {str(job_id) for job_id in ids}
    blocked_events = [e for e in rig.audit("job.blocked") if e.target_id in mine]
    assert sorted(uuid.UUID(e.target_id or "") for e in blocked_events) == sorted(refused)
    assert {e.actor_role for e in blocked_events} == {"system"}
    assert all(e.team_id == team.team_id and e.details["stage"] == "input" for e in blocked_events)


def test_a_rule_added_while_jobs_wait_applies_to_them(
    rig: Rig, team: TeamKey, other_team: TeamKey
) -> None:
    rig.dispatcher.settings = rig.dispatcher.settings.model_copy(update={"dispatch_window": 1})
    ids = rig.add_batch(team, [(f"prompt number {i}", {}) for i in range(12)])
    theirs = rig.add_batch(other_team, [("prompt number 9", {})])
    rig.dispatcher.refill()  # one chunk of four; eight wait
    first = rig.sent()
    assert first == ids[:4]

    # A team rule on a term of a waiting job, and the cache notices the new version.
    rig.add_rule(team, name="nines", terms=["9"], reason_code="test")
    rig.add_rule(team, name="elevens", terms=["11"], reason_code="test")
    sent = list(first)
    for _ in range(10):
        rig.dispatcher.refill()
        sent += rig.sent()
    jobs = rig.jobs(ids + theirs)
    assert {job_id for job_id, job in jobs.items() if job.status == JobStatus.BLOCKED} == {
        ids[9],
        ids[11],
    }
    assert sorted(sent) == sorted(set(ids + theirs) - {ids[9], ids[11]})  # not other teams'


def test_global_rules_apply_to_every_team(rig: Rig, team: TeamKey, other_team: TeamKey) -> None:
    rig.add_rule(None, name="everyone", terms=["forbidden"], reason_code="policy")
    ours = rig.add_batch(team, [("a forbidden thing", {})])
    theirs = rig.add_batch(other_team, [("another FORBIDDEN thing", {}), ("fine", {})])
    rig.dispatcher.refill()
    assert rig.sent() == [theirs[1]]
    jobs = rig.jobs(ours + theirs)
    assert [jobs[i].status for i in (ours[0], theirs[0])] == [JobStatus.BLOCKED] * 2


def test_a_batch_whose_jobs_were_all_refused_failed(rig: Rig, team: TeamKey) -> None:
    rig.add_rule(team, name="all", terms=["x"], reason_code="test")
    ids = rig.add_batch(team, [("x", {}), ("x y", {})])
    rig.dispatcher.refill()
    with rig.session_factory() as session:
        batch = get_batch(session, rig.jobs(ids)[ids[0]].batch_id)  # type: ignore[arg-type]
        assert batch is not None
        status = batch_status(batch, batch_counts(session, [batch])[batch.id])
    assert status == "failed" and rig.sent() == []


def test_generated_text_is_checked_before_it_is_stored(
    rig: Rig, settings: Settings, team: TeamKey
) -> None:
    # The job was sent before the rule existed: the worker's own check refuses its output
    # (the echo model's text is its prompt).
    with rig.session_factory.begin() as session:
        refused = create_job(
            session,
            kind="text",
            model="echo",
            prompt="the secret launch code",
            params={},
            metadata={},
            team_id=team.team_id,
        ).id
        kept = create_job(
            session,
            kind="text",
            model="echo",
            prompt="a fine output",
            params={},
            metadata={},
            team_id=team.team_id,
        ).id
    rig.add_rule(team, name="secrets", terms=["launch code"], reason_code="confidential")

    outcome = execute_jobs(create_runtime(settings), [refused, kept])

    assert outcome == {"blocked": 1, "succeeded": 1}
    jobs = rig.jobs([refused, kept])
    job = jobs[refused]
    assert job.status == JobStatus.BLOCKED and job.error_code == "content_blocked"
    assert job.moderation is not None and job.moderation["stage"] == "output"
    assert job.moderation["rule"] == "secrets"
    assert jobs[kept].status == JobStatus.SUCCEEDED
    with rig.session_factory() as session:
        stored = session.scalars(select(Artifact.job_id)).all()
    assert stored == [kept]  # nothing of the refused job: no row...
    assert not [p for p in settings.artifact_dir.rglob(f"{refused}*")]  # ...and no bytes
    (event,) = [e for e in rig.audit("job.blocked") if e.target_id in {str(refused), str(kept)}]
    assert event.target_id == str(refused) and event.details["stage"] == "output"


def test_audit_events_cannot_be_changed_or_removed(rig: Rig, team: TeamKey) -> None:
    with rig.session_factory.begin() as session:
        session.execute(
            sa.text(
                "INSERT INTO audit_events (team_id, actor_role, action) "
                "VALUES (:team, 'member', 'job.submitted')"
            ),
            {"team": team.team_id},
        )
    for statement in (
        "UPDATE audit_events SET action = 'nothing'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ):
        with (
            pytest.raises(sa.exc.DBAPIError, match="append-only"),
            rig.session_factory.begin() as session,
        ):
            session.execute(sa.text(statement))
    with rig.session_factory() as session:
        assert session.scalar(select(sa.func.count()).select_from(Job)) == 0
        actions = session.scalars(sa.text("SELECT action FROM audit_events")).all()
    assert "job.submitted" in actions and "nothing" not in actions
