"""Webhook delivery: echo jobs with a `webhook` through the API, the dispatcher, one worker
and the deliverer, to a receiver process that verifies each request with the
`standardwebhooks` package. Delivery latency is from the job's finished_at (its outcome's
commit, server clock) to the receiver's first 2xx answer to it (same machine's clock);
against a receiver failing a fraction of requests at random, with the retries that takes.
Baseline: the same jobs to a receiver that never fails."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from aigc.servers import free_port, port_open
from aigc.settings import Settings
from benchmarks.latency import percentile
from benchmarks.report import comparison
from benchmarks.services import (
    REPO_ROOT,
    START_TIMEOUT_S,
    Services,
    child,
    job_stack,
    wait_until,
)
from tests.webhooks.receiver import read_records

log = logging.getLogger(__name__)

JOBS, JOBS_QUICK = 200, 60
WARMUP_JOBS = 5
FAIL_RATE = 0.3  # of the flaky receiver's answers: 500 at random
SUBMIT_GAP_S = 0.02  # between submissions: a steady stream, not one burst
DELIVERY_TIMEOUT_S = 120.0
# The receiver the tests run (a customer's receiver in a process of its own).
RECEIVER = REPO_ROOT / "tests" / "webhooks" / "receiver.py"
# Fast retries so a run takes a minute, not a day: the n-th retry waits up to
# min(5 s, 0.25 s * 2^n). Everything else is the deliverer's default.
DELIVERER_ENV = {
    "AIGC_WEBHOOK_ALLOW_HTTP": "true",
    "AIGC_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver listens on loopback
    "AIGC_WEBHOOK_RETRY_BASE_S": "0.25",
    "AIGC_WEBHOOK_RETRY_CAP_S": "5",
}
ECHO_JOB = {"kind": "text", "model": "echo", "prompt": "A note for the webhook."}
WEBHOOK_TABLES = "webhook_deliveries, webhook_attempts, webhook_endpoints, webhook_secrets"


@contextmanager
def _receiver(work_dir: Path, secret: str, fail_rate: float) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log_file = work_dir / f"receiver-{port}.jsonl"
    secrets_file = work_dir / f"receiver-{port}.secrets"
    secrets_file.write_text(secret + "\n")
    args = [str(port), str(log_file), str(secrets_file), "--fail-rate", str(fail_rate)]
    proc = subprocess.Popen([sys.executable, str(RECEIVER), *args])
    try:
        wait_until(lambda: port_open("127.0.0.1", port), START_TIMEOUT_S, "receiver", proc)
        yield f"http://127.0.0.1:{port}/hook", log_file
    finally:
        proc.kill()
        proc.wait()


def _run(services: Services, client: httpx.Client, count: int, fail_rate: float) -> dict[str, Any]:
    """Submit `count` jobs with a webhook to a receiver failing `fail_rate` of requests;
    wait for every delivery; the figures."""
    secret = client.get("/v1/webhooks/secret").raise_for_status().json()["data"][0]["secret"]
    with _receiver(services.work_dir, secret, fail_rate) as (url, log_file):
        job_ids = []
        for _ in range(count):
            body = {**ECHO_JOB, "webhook": url}
            job_ids.append(client.post("/v1/jobs", json=body).raise_for_status().json()["id"])
            time.sleep(SUBMIT_GAP_S)
        engine = sa.create_engine(services.database_url)
        try:

            def delivered() -> bool:
                with engine.connect() as conn:
                    return (
                        conn.execute(
                            sa.text(
                                "SELECT count(*) FROM webhook_deliveries "
                                "WHERE status = 'delivered' AND job_id = ANY(CAST(:ids AS uuid[]))"
                            ),
                            {"ids": job_ids},
                        ).scalar_one()
                        == count
                    )

            wait_until(delivered, DELIVERY_TIMEOUT_S, "webhooks: every delivery", interval_s=0.2)
            with engine.connect() as conn:
                finished: dict[str, float] = dict(
                    conn.execute(
                        sa.text(
                            "SELECT id::text, EXTRACT(EPOCH FROM finished_at)::float8 FROM jobs "
                            "WHERE id = ANY(CAST(:ids AS uuid[]))"
                        ),
                        {"ids": job_ids},
                    ).all()
                )
                attempts = [
                    int(n)
                    for (n,) in conn.execute(
                        sa.text(
                            "SELECT attempts FROM webhook_deliveries "
                            "WHERE job_id = ANY(CAST(:ids AS uuid[]))"
                        ),
                        {"ids": job_ids},
                    )
                ]
                # Where the time goes: the job's end → its delivery row (the fan-out), and
                # that row → the first request's start (the sender).
                split = conn.execute(
                    sa.text(
                        "SELECT EXTRACT(EPOCH FROM d.created_at - j.finished_at)::float8,"
                        " EXTRACT(EPOCH FROM (SELECT min(a.attempted_at"
                        "   - make_interval(secs => a.latency_ms / 1000.0))"
                        "   FROM webhook_attempts a WHERE a.delivery_id = d.id)"
                        "   - d.created_at)::float8"
                        " FROM webhook_deliveries d JOIN jobs j ON j.id = d.job_id"
                        " WHERE d.job_id = ANY(CAST(:ids AS uuid[]))"
                    ),
                    {"ids": job_ids},
                ).all()
                request_ms: list[float] = []
                errors: dict[str, int] = {}
                for ms, error in conn.execute(
                    sa.text(
                        "SELECT a.latency_ms, a.error FROM webhook_attempts a "
                        "JOIN webhook_deliveries d ON d.id = a.delivery_id "
                        "WHERE d.job_id = ANY(CAST(:ids AS uuid[]))"
                    ),
                    {"ids": job_ids},
                ):
                    request_ms.append(float(ms))
                    if error:
                        errors[error] = errors.get(error, 0) + 1
        finally:
            engine.dispose()
        records = read_records(log_file)
    first_ok: dict[str, float] = {}
    first_seen: dict[str, float] = {}
    for record in records:
        job_id = json.loads(record["body"])["data"]["id"]
        first_seen.setdefault(job_id, record["received_at"])
        if record["status"] == 200:
            first_ok.setdefault(job_id, record["received_at"])
    unverified = sum(1 for record in records if not any(record["verified"]))
    delivered_ms = [(first_ok[j] - finished[j]) * 1000.0 for j in job_ids if j in first_ok]
    first_ms = [(first_seen[j] - finished[j]) * 1000.0 for j in job_ids if j in first_seen]
    retries = [n - 1 for n in attempts]
    return {
        "jobs": count,
        "receiver_fail_rate": fail_rate,
        "delivered": len(delivered_ms),
        "requests_received": len(records),
        "unverified_requests": unverified,
        "finished_to_delivered": _summary(delivered_ms),
        "finished_to_first_attempt": _summary(first_ms),
        "finished_to_fanned_out": _summary([row[0] * 1000.0 for row in split]),
        "fanned_out_to_first_request": _summary([row[1] * 1000.0 for row in split]),
        "request_latency": _summary(request_ms),
        "failed_attempts_by_error": errors,
        "retries_total": sum(retries),
        "retries_per_delivery_mean": sum(retries) / len(retries),
        "retries_max": max(retries),
        "deliveries_by_attempts": {str(n): attempts.count(n) for n in sorted(set(attempts))},
    }


def _summary(ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "min_ms": min(ms),
        "max_ms": max(ms),
    }


def _clear(services: Services) -> None:
    engine = sa.create_engine(services.database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {WEBHOOK_TABLES} CASCADE")
    engine.dispose()


def run(services: Services, *, quick: bool) -> dict[str, Any]:
    count = JOBS_QUICK if quick else JOBS
    env = services.env(AIGC_PRELOAD_MODELS="false", **DELIVERER_ENV)
    _clear(services)
    with (
        job_stack(services, env) as stack,
        child("deliverer", ["deliverer"], env, services.log_dir),
        httpx.Client(base_url=stack.url, timeout=30.0, headers=services.headers) as client,
    ):
        # The worker's first job waits for its start: no measure of delivery.
        probe = client.post("/v1/jobs", json=ECHO_JOB).raise_for_status().json()["id"]
        wait_until(
            lambda: client.get(f"/v1/jobs/{probe}").json()["status"] == "succeeded",
            START_TIMEOUT_S,
            "webhooks: the worker's first job",
            stack.worker,
        )
        # Warm the receiver's and the deliverer's connections and code paths.
        _run(services, client, WARMUP_JOBS, 0.0)
        log.info("webhooks: %d jobs to a receiver that never fails", count)
        healthy = _run(services, client, count, 0.0)
        log.info("webhooks: %d jobs to a receiver failing %.0f%%", count, FAIL_RATE * 100)
        flaky = _run(services, client, count, FAIL_RATE)
    _clear(services)
    services.reset()
    poll_s = Settings.model_fields["webhook_poll_s"].default
    return comparison(
        description=(
            f"{count} echo jobs with a `webhook`, submitted every {SUBMIT_GAP_S * 1000:g} ms "
            "(API, dispatcher, 1 worker --queues text, 1 deliverer), to a receiver process on "
            "loopback that verifies each request with the standardwebhooks package and "
            f"answers 500 to {FAIL_RATE:.0%} of requests at random; latency from the job's "
            "finished_at to the receiver's first 2xx. Retries: full jitter up to "
            f"min({DELIVERER_ENV['AIGC_WEBHOOK_RETRY_CAP_S']} s, "
            f"{DELIVERER_ENV['AIGC_WEBHOOK_RETRY_BASE_S']} s * 2^n), polled every "
            f"{poll_s:g} s when no notification comes"
        ),
        figure=flaky,
        baseline={
            "description": "the same jobs to a receiver that never fails",
            **healthy,
        },
        ratio=healthy["finished_to_delivered"]["p50_ms"] / flaky["finished_to_delivered"]["p50_ms"],
        targets={
            "delivered_fraction": (">=", 1.0),
            "unverified_requests": ("<=", 0.0),
            "healthy_p95_ms": ("<=", 1000.0),
        },
        values={
            "delivered_fraction": flaky["delivered"] / count,
            "unverified_requests": float(
                flaky["unverified_requests"] + healthy["unverified_requests"]
            ),
            "healthy_p95_ms": healthy["finished_to_delivered"]["p95_ms"],
        },
    )
