"""A real API process (uvicorn) and a real Celery worker process, shared by the e2e tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from aigc.cli.stack import spawn, stop_process, wait_for_http
from aigc.settings import Settings
from tests.conftest import TeamKey
from tests.live import stack_env, submit, wait_for_job

WORKER_READY_TIMEOUT_S = 180.0  # cold imports and three model loads on a 2-core machine


@dataclass
class LiveStack:
    api_url: str
    env: dict[str, str]
    client: httpx.Client


OPENAI_ALIASES = {"gpt-4o-mini": "tiny-text", "dall-e-3": "tiny-image", "tts-1": "tiny-audio"}


@pytest.fixture(scope="session")
def live_env(
    database_url: str, redis_url: str, artifact_dir: Path, tiny_models: Path, var_dir: Path
) -> dict[str, str]:
    services = Settings(
        database_url=database_url,
        redis_url=redis_url,
        artifact_dir=artifact_dir,
        var_dir=var_dir,
    )
    return stack_env(
        services,
        tiny_models,
        AIGC_PRELOAD_MODELS="true",
        # OpenAI's names run only where an operator maps them to a served model.
        AIGC_MODEL_ALIASES=json.dumps(OPENAI_ALIASES),
        # Progress stored every 50 ms: even a short job shows several reports on its stream.
        AIGC_PROGRESS_INTERVAL_S="0.05",
    )


# Package scope: its dispatcher serves the shared database, so it must be gone before
# other packages start dispatchers of their own on other brokers.
@pytest.fixture(scope="package")
def live_stack(
    live_env: dict[str, str], free_port: Callable[[], int], team: TeamKey
) -> Iterator[LiveStack]:
    port = free_port()
    api = spawn("api", ["api", "--host", "127.0.0.1", "--port", str(port)], live_env)
    worker = spawn("worker", ["worker", "--queues", "text,image,audio"], live_env)
    dispatcher = spawn("dispatcher", ["dispatcher"], live_env)
    api_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{api_url}/healthz", 60, api)
        with httpx.Client(base_url=api_url, timeout=30, headers=team.headers) as client:
            # The worker is ready once it has run a job end to end.
            probe = submit(client, kind="text", model="echo", prompt="ready?")
            assert (
                wait_for_job(client, probe["id"], WORKER_READY_TIMEOUT_S)["status"] == "succeeded"
            )
            yield LiveStack(api_url=api_url, env=live_env, client=client)
    finally:
        stop_process(api)
        stop_process(dispatcher)
        stop_process(worker)


@pytest.fixture
def live(live_stack: LiveStack, clean_state: None) -> LiveStack:
    return live_stack
