"""Fair share between teams, on one worker running the tiny text model:

(a) team B alone: a 50-job batch, from POST until all succeeded (the baseline);
(b) the same while team A has a large batch running: B's burst must not wait behind A's
    backlog (target: at most twice (a));
(c) A and B both backlogged, weights 3:1: the jobs each completes over a stretch in the
    middle must be in that proportion (target: 3 ± 20%).
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

from benchmarks.accept import post_batch
from benchmarks.report import comparison
from benchmarks.services import START_TIMEOUT_S, JobStack, Services, job_stack, wait_until
from db import teams as team_queries
from models.registry import TINY_TEXT
from models.tiny import ensure_tiny_model

log = logging.getLogger(__name__)

MODEL = TINY_TEXT.name
# Eight new tokens: once the worker is warm a chunk of 16 takes about 0.1 s on a 2-core CPU
# (the first few take up to a second: the stack is warmed before any measure), so the
# largest batch here, 2,000 jobs, would take a quarter of a minute.
PARAMS = {"max_new_tokens": 8}
TORCH_THREADS = 1
WARMUP_JOBS = 130  # eight chunks of 16 and one of 2, the shapes B's batch runs in
BURST_JOBS = 50  # B's batch in (a) and (b)
BURST_REPEATS = 5  # (a) and (b) are each the median of five bursts: each takes about a second
BACKLOG_JOBS, BACKLOG_JOBS_QUICK = 2_000, 1_000  # A's batch in (b): five bursts need ~900
# (b) sends B's first batch once A has this many succeeded (A's backlog is established), and
# each next one once A has run REJOIN_JOBS more since B's last burst: a team that left a
# moment ago rejoins at its own pass, so without the gap a burst would get less than the
# newcomer's credit and the three would not measure the same thing.
STEADY_JOBS = 32
REJOIN_JOBS = 64
# (c): each team's batch, A's weight and B's. B does a third of A's work, so it needs fewer
# jobs to stay backlogged until A's run out.
WEIGHTED_JOBS = {"full": (1_200, 600), "quick": (720, 360)}
WEIGHTS = (3, 1)
WEIGHT_TOLERANCE = 0.2  # A/B within 3 ± 20%
# (c) measures once each team has STEADY_JOBS succeeded (past the start, when the team that
# joins second is credited the window the other holds), and stops after MEASURE_S or when a
# team is within MARGIN_JOBS of its last job (it must stay backlogged to the end).
MEASURE_S, MEASURE_S_QUICK = 30.0, 15.0
MARGIN_JOBS = 80  # five chunks of 16: the broker's window, the running chunk and slack
POLL_INTERVAL_S = 0.05
RUN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class TeamKey:
    name: str
    team_id: uuid.UUID
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def _make_teams(services: Services) -> tuple[TeamKey, TeamKey]:
    """Teams A and B (weight 1 each), a member key each."""
    suffix = uuid.uuid4().hex[:6]  # teams outlive a reset: a name of this run's own
    engine = sa.create_engine(services.database_url)
    made = []
    try:
        with Session(engine) as session, session.begin():
            for letter in "ab":
                name = f"fairness-{letter}-{suffix}"
                team = team_queries.create_team(session, name=name, weight=1)
                _, new = team_queries.create_key(session, team=team, name="benchmarks")
                made.append(TeamKey(name, team.id, new.key))
    finally:
        engine.dispose()
    return made[0], made[1]


def _set_weights(services: Services, weights: dict[uuid.UUID, int]) -> None:
    engine = sa.create_engine(services.database_url)
    try:
        with engine.begin() as conn:
            for team_id, weight in weights.items():
                conn.execute(
                    sa.text("UPDATE teams SET weight = :weight WHERE id = :id"),
                    {"weight": weight, "id": team_id},
                )
    finally:
        engine.dispose()


def tiny_text_jsonl(count: int, prefix: str) -> bytes:
    return "".join(
        json.dumps(
            {
                "custom_id": f"{prefix}-{n}",
                "kind": "text",
                "model": MODEL,
                "prompt": f"Note {n} for {prefix}: the prospects of AIGC.",
                "params": PARAMS,
            }
        )
        + "\n"
        for n in range(count)
    ).encode()


@contextmanager
def _stack(services: Services) -> Iterator[JobStack]:
    """API, dispatcher and one text worker (tiny-text preloaded), warm: the first chunks a
    worker runs take up to ten times longer than the next ones, so a warm-up batch of the
    benchmark team has run."""
    # One torch thread, as the generation benchmarks: on a shared 2-core host two OpenMP
    # threads spin against the neighbours' processes and chunk times swing tenfold.
    env = services.env(OMP_NUM_THREADS=str(TORCH_THREADS))
    with (
        job_stack(services, env) as stack,
        httpx.Client(base_url=stack.url, timeout=60.0, headers=services.headers) as client,
    ):
        warmup = post_batch(client, tiny_text_jsonl(WARMUP_JOBS, "warmup"))["id"]
        wait_until(
            lambda: _counts(client, warmup)["succeeded"] == WARMUP_JOBS,
            START_TIMEOUT_S,
            "fairness: the warm-up batch",
            stack.worker,
        )
        yield stack


def _counts(client: httpx.Client, batch_id: str) -> dict[str, int]:
    counts: dict[str, int] = (
        client.get(f"/v1/batches/{batch_id}").raise_for_status().json()["counts"]
    )
    if counts["failed"] or counts["canceled"]:
        raise RuntimeError(f"fairness: batch {batch_id} has jobs that did not succeed: {counts}")
    return counts


def _succeeded_at_least(client: httpx.Client, batch_id: str, count: int) -> Callable[[], bool]:
    return lambda: _counts(client, batch_id)["succeeded"] >= count


def _burst(client: httpx.Client, worker: subprocess.Popen[bytes], prefix: str) -> float:
    """B's batch: seconds from before its POST until its counts show all succeeded."""
    started = time.monotonic()
    batch = post_batch(client, tiny_text_jsonl(BURST_JOBS, prefix))["id"]
    done = wait_until(
        lambda: _counts(client, batch)["succeeded"] == BURST_JOBS,
        RUN_TIMEOUT_S,
        f"fairness: B's batch {prefix}",
        worker,
        POLL_INTERVAL_S,
    )
    return done - started


def _idle_and_backlogged(
    services: Services, a: TeamKey, b: TeamKey, backlog: int
) -> dict[str, Any]:
    """(a) and (b): B's bursts alone, then behind A's backlog."""
    with (
        _stack(services) as stack,
        httpx.Client(base_url=stack.url, timeout=60.0, headers=a.headers) as client_a,
        httpx.Client(base_url=stack.url, timeout=60.0, headers=b.headers) as client_b,
    ):
        log.info("fairness (a): B's %d jobs on an idle system", BURST_JOBS)
        idle = [_burst(client_b, stack.worker, f"idle-{n}") for n in range(BURST_REPEATS)]
        log.info("fairness (a): %s s", ", ".join(f"{s:.2f}" for s in idle))
        log.info("fairness (b): A's %d jobs, then B's %d", backlog, BURST_JOBS)
        batch_a = post_batch(client_a, tiny_text_jsonl(backlog, "backlog"))["id"]
        busy, a_meanwhile = [], []
        a_done = STEADY_JOBS - REJOIN_JOBS
        for n in range(BURST_REPEATS):
            wait_until(
                _succeeded_at_least(client_a, batch_a, a_done + REJOIN_JOBS),
                RUN_TIMEOUT_S,
                "fairness: A's backlog running",
                stack.worker,
                POLL_INTERVAL_S,
            )
            a_before = _counts(client_a, batch_a)["succeeded"]
            busy.append(_burst(client_b, stack.worker, f"busy-{n}"))
            a_after = _counts(client_a, batch_a)
            if a_after["queued"] == 0:
                raise RuntimeError("fairness (b): A's backlog ran out before B's batch ended")
            a_done = a_after["succeeded"]
            a_meanwhile.append(a_done - a_before)
        log.info(
            "fairness (b): %s s, A's jobs done meanwhile %s",
            ", ".join(f"{s:.2f}" for s in busy),
            a_meanwhile,
        )
    return {"idle_s": idle, "busy_s": busy, "a_jobs_succeeded_while_b_ran": a_meanwhile}


def _succeeded_by_team(conn: sa.Connection) -> dict[uuid.UUID, int]:
    rows = conn.execute(
        sa.text("SELECT team_id, count(*) FROM jobs WHERE status = 'succeeded' GROUP BY team_id")
    )
    return {team_id: int(n) for team_id, n in rows}


def _weighted(
    services: Services, a: TeamKey, b: TeamKey, jobs: tuple[int, int], measure_s: float
) -> dict[str, Any]:
    """(c): both backlogged at weights 3:1; jobs each finishes over a stretch in the middle."""
    total_a, total_b = jobs
    _set_weights(services, {a.team_id: WEIGHTS[0], b.team_id: WEIGHTS[1]})
    engine = sa.create_engine(services.database_url)
    try:
        with (
            _stack(services) as stack,
            httpx.Client(base_url=stack.url, timeout=60.0, headers=a.headers) as client_a,
            httpx.Client(base_url=stack.url, timeout=60.0, headers=b.headers) as client_b,
            engine.connect() as conn,
        ):
            conn.execution_options(isolation_level="AUTOCOMMIT")
            log.info(
                "fairness (c): A %d jobs at weight %d, B %d at weight %d",
                total_a,
                WEIGHTS[0],
                total_b,
                WEIGHTS[1],
            )
            post_batch(client_a, tiny_text_jsonl(total_a, "weighted"))
            post_batch(client_b, tiny_text_jsonl(total_b, "weighted"))

            def done() -> dict[uuid.UUID, int]:
                counts = _succeeded_by_team(conn)
                return {team: counts.get(team, 0) for team in (a.team_id, b.team_id)}

            wait_until(
                lambda: min(done().values()) >= STEADY_JOBS,
                RUN_TIMEOUT_S,
                "fairness (c): both teams running",
                stack.worker,
                POLL_INTERVAL_S,
            )
            window_start = conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
            started = time.monotonic()

            def window_over() -> bool:
                counts = done()
                return (
                    time.monotonic() - started >= measure_s
                    or counts[a.team_id] >= total_a - MARGIN_JOBS
                    or counts[b.team_id] >= total_b - MARGIN_JOBS
                )

            wait_until(window_over, RUN_TIMEOUT_S, "fairness (c)", stack.worker, POLL_INTERVAL_S)
            window_end = conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
            rows = conn.execute(
                sa.text(
                    "SELECT team_id, count(*) FROM jobs WHERE status = 'succeeded'"
                    " AND finished_at > :start AND finished_at <= :end GROUP BY team_id"
                ),
                {"start": window_start, "end": window_end},
            )
            finished = {team_id: int(n) for team_id, n in rows}
            at_end = done()
    finally:
        engine.dispose()
    done_a, done_b = finished.get(a.team_id, 0), finished.get(b.team_id, 0)
    log.info("fairness (c): A %d, B %d jobs in the window", done_a, done_b)
    if done_b == 0:
        raise RuntimeError(f"fairness (c): B finished nothing in the window (A {done_a})")
    return {
        "jobs_a": total_a,
        "jobs_b": total_b,
        "window_s": (window_end - window_start).total_seconds(),
        "succeeded_in_window_a": done_a,
        "succeeded_in_window_b": done_b,
        "succeeded_at_window_end_a": at_end[a.team_id],
        "succeeded_at_window_end_b": at_end[b.team_id],
        "a_to_b": done_a / done_b,
    }


def run(services: Services, *, quick: bool) -> dict[str, Any]:
    # The services benchmarks run before the model ones build the tiny models: the API (its
    # token budget reads the tokenizer) and the worker need tiny-text in place.
    ensure_tiny_model(MODEL, services.work_dir / "models")
    a, b = _make_teams(services)
    backlog = BACKLOG_JOBS_QUICK if quick else BACKLOG_JOBS
    burst = _idle_and_backlogged(services, a, b, backlog)
    services.reset()
    weighted = _weighted(
        services,
        a,
        b,
        WEIGHTED_JOBS["quick" if quick else "full"],
        MEASURE_S_QUICK if quick else MEASURE_S,
    )
    services.reset()

    idle_s, busy_s = statistics.median(burst["idle_s"]), statistics.median(burst["busy_s"])
    ratio = busy_s / idle_s
    expected = WEIGHTS[0] / WEIGHTS[1]
    return comparison(
        description=(
            f"teams sharing 1 worker (--queues text, {TORCH_THREADS} torch thread) on {MODEL}, "
            "max_new_tokens "
            f"{PARAMS['max_new_tokens']}: (b) team B's {BURST_JOBS}-job batch, POST until "
            f"all succeeded, while team A's {backlog:,}-job batch is running (equal weights), "
            f"median of {BURST_REPEATS}; "
            f"(c) both backlogged at weights {WEIGHTS[0]}:{WEIGHTS[1]}, jobs each completed "
            "over a stretch in the middle (jobs.finished_at)"
        ),
        figure={
            "burst_jobs": BURST_JOBS,
            "backlog_jobs": backlog,
            "burst_seconds_behind_backlog": busy_s,
            "burst_seconds_each_run": burst["busy_s"],
            "a_jobs_succeeded_while_b_ran": burst["a_jobs_succeeded_while_b_ran"],
            "weighted": {"weights": list(WEIGHTS), **weighted},
        },
        baseline={
            "description": (
                f"(a) team B's {BURST_JOBS}-job batch on an idle (warm) system, median of "
                f"{BURST_REPEATS}"
            ),
            "burst_seconds_idle": idle_s,
            "burst_seconds_each_run": burst["idle_s"],
        },
        ratio=ratio,
        targets={
            "ratio": ("<=", 2.0),
            "weighted_a_to_b_error": ("<=", WEIGHT_TOLERANCE),
        },
        values={"weighted_a_to_b_error": abs(weighted["a_to_b"] / expected - 1.0)},
    )
