"""Real processes for the webhook tests: the API, a worker, the dispatcher and the deliverer
(package scope), and receivers: small HTTP servers in processes of their own that verify
each request with the `standardwebhooks` package and log what they got."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from aigc.cli.stack import spawn, stop_process, wait_for_http
from aigc.servers import port_open
from aigc.settings import Settings
from tests.conftest import TeamKey
from tests.live import stack_env, submit, wait_for_job
from tests.webhooks.receiver import read_records

RECEIVER = Path(__file__).parents[1] / "receiver.py"
START_TIMEOUT_S = 120.0  # cold imports on a busy 2-core machine
# Fast retries and polls, so a test sees several attempts in a second or two.
DELIVERER_ENV = {
    "AIGC_WEBHOOK_ALLOW_HTTP": "true",
    "AIGC_WEBHOOK_ALLOW_PRIVATE": "true",  # the receivers listen on loopback
    "AIGC_WEBHOOK_RETRY_BASE_S": "0.1",
    "AIGC_WEBHOOK_RETRY_CAP_S": "0.5",
    "AIGC_WEBHOOK_POLL_S": "0.2",
    "AIGC_WEBHOOK_CONNECT_TIMEOUT_S": "1",
    "AIGC_WEBHOOK_TIMEOUT_S": "1.5",
    "AIGC_WEBHOOK_SECRET_OVERLAP_S": "3600",
}


@dataclass
class Receiver:
    url: str
    log: Path
    secrets_file: Path
    process: subprocess.Popen[bytes]

    def records(self) -> list[dict[str, Any]]:
        return read_records(self.log)

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 30.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            records = self.records()
            if predicate(records):
                return records
            if time.monotonic() > deadline:
                raise AssertionError(f"the receiver got {len(records)} requests: {records}")
            time.sleep(0.05)


def payloads(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(record["body"]) for record in records]


@dataclass
class WebhookStack:
    api_url: str
    client: httpx.Client

    def secrets(self) -> list[str]:
        body = self.client.get("/v1/webhooks/secret").raise_for_status().json()
        return [entry["secret"] for entry in body["data"]]


@pytest.fixture(scope="package")
def webhook_stack_processes(
    database_url: str,
    redis_url: str,
    artifact_dir: Path,
    model_dir: Path,
    var_dir: Path,
    free_port: Callable[[], int],
    team: TeamKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WebhookStack]:
    services = Settings(
        database_url=database_url,
        redis_url=redis_url,
        artifact_dir=artifact_dir,
        var_dir=var_dir,
    )
    env = stack_env(services, model_dir, **DELIVERER_ENV)
    port = free_port()
    env["AIGC_API_PORT"] = str(port)
    logs = tmp_path_factory.mktemp("webhook-logs")
    processes = [
        spawn("api", ["api", "--host", "127.0.0.1", "--port", str(port)], env, logs),
        spawn("worker", ["worker", "--queues", "text"], env, logs),
        spawn("dispatcher", ["dispatcher"], env, logs),
        spawn("deliverer", ["deliverer"], env, logs),
    ]
    api_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{api_url}/healthz", 60, processes[0])
        with httpx.Client(base_url=api_url, timeout=30, headers=team.headers) as client:
            probe = submit(client, kind="text", model="echo", prompt="ready?")
            assert wait_for_job(client, probe["id"], START_TIMEOUT_S)["status"] == "succeeded"
            yield WebhookStack(api_url=api_url, client=client)
    finally:
        for process in reversed(processes):
            stop_process(process)


@pytest.fixture
def webhook_stack(webhook_stack_processes: WebhookStack, clean_state: None) -> WebhookStack:
    return webhook_stack_processes


@pytest.fixture
def start_receiver(
    free_port: Callable[[], int], tmp_path: Path
) -> Iterator[Callable[..., Receiver]]:
    """Start a receiver process: `start_receiver(secrets, *options)`; stopped after the
    test."""
    started: list[Receiver] = []

    def start(secrets: list[str], *options: str) -> Receiver:
        port = free_port()
        log = tmp_path / f"receiver-{port}.jsonl"
        secrets_file = tmp_path / f"secrets-{port}"
        secrets_file.write_text("\n".join(secrets) + "\n")
        process = subprocess.Popen(
            [sys.executable, str(RECEIVER), str(port), str(log), str(secrets_file), *options]
        )
        receiver = Receiver(f"http://127.0.0.1:{port}/hook", log, secrets_file, process)
        started.append(receiver)
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the receiver did not start")
            time.sleep(0.05)
        return receiver

    yield start
    for receiver in started:
        receiver.process.kill()
        receiver.process.wait()
