"""A stack of real processes with their metrics servers on: the API, a dispatcher and a worker
for some kinds, all behind one metrics token; and reading /metrics as Prometheus would."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from aigc.cli.stack import spawn, stop_process, wait_for_http
from aigc.settings import Settings
from tests.live import stack_env

START_TIMEOUT_S = 120.0  # a worker's cold imports (torch) on a 2-core machine


@dataclass
class MetricsStack:
    api_url: str
    worker_metrics_url: str
    dispatcher_metrics_url: str
    token: str
    processes: dict[str, subprocess.Popen[bytes]]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def metrics_stack(
    settings: Settings,
    model_dir: Path,
    free_port: Callable[[], int],
    worker_kinds: str,
    log_dir: Path | None = None,
) -> Iterator[MetricsStack]:
    """API, dispatcher and a worker for `worker_kinds`, each serving /metrics; stopped on
    exit (the API first, the worker last, as `aigc up` does)."""
    api_port, worker_port, dispatcher_port = free_port(), free_port(), free_port()
    token = secrets.token_hex(16)
    env = stack_env(
        settings,
        model_dir,
        AIGC_METRICS_TOKEN=token,
        AIGC_DISPATCHER_METRICS_PORT=str(dispatcher_port),
    )
    stack = MetricsStack(
        api_url=f"http://127.0.0.1:{api_port}",
        worker_metrics_url=f"http://127.0.0.1:{worker_port}/metrics",
        dispatcher_metrics_url=f"http://127.0.0.1:{dispatcher_port}/metrics",
        token=token,
        processes={},
    )
    with ExitStack() as cleanup:
        for name, args in (
            ("api", ["api", "--host", "127.0.0.1", "--port", str(api_port)]),
            ("dispatcher", ["dispatcher"]),
            # The flag, as on a host running a worker per GPU, each on its own port.
            ("worker", ["worker", "--queues", worker_kinds, "--metrics-port", str(worker_port)]),
        ):
            proc = spawn(name, args, env, log_dir)
            cleanup.callback(stop_process, proc)
            stack.processes[name] = proc
        wait_for_http(f"{stack.api_url}/healthz", START_TIMEOUT_S, stack.processes["api"])
        for name, url in (
            ("worker", stack.worker_metrics_url),
            ("dispatcher", stack.dispatcher_metrics_url),
        ):
            wait_for_metrics(url, stack.auth, stack.processes[name])
        yield stack


def wait_for_metrics(
    url: str, headers: dict[str, str], proc: subprocess.Popen[bytes], timeout_s: float = 120.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the process serving {url} exited with {proc.returncode}"
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f}s")


def scrape(url: str, headers: dict[str, str]) -> list[Sample]:
    """Every sample of a /metrics page, parsed with prometheus_client's own parser."""
    response = httpx.get(url, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    """The value of the one sample with this name whose labels include `labels`."""
    found = [s for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, found
    return found[0].value if found else None
